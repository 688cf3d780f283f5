package kaon.runtime.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.google.protobuf.util.Timestamps;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.reflection.v1alpha.ServerReflectionGrpc;
import io.grpc.reflection.v1alpha.ServerReflectionRequest;
import io.grpc.reflection.v1alpha.ServerReflectionResponse;
import io.grpc.reflection.v1alpha.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.v1.CancelJobRequest;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.DownloadModelRequest;
import kaon.protocol.v1.DrainNodeRequest;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.ModelChunk;
import kaon.protocol.v1.ScaleJobRequest;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.protocol.v1.WatchJobRequest;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.connectors.cassandra.CassandraSessionSettings;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import kaon.protocol.health.v1.HealthCheckRequest;
import kaon.protocol.health.v1.HealthCheckResponse;
import kaon.protocol.health.v1.HealthClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The API over a real socket, with the generated clients, against a real node and Cassandra. */
class GrpcApiTest {

  private static final String TOKEN = "test-token-" + UUID.randomUUID();
  private static final Duration WAIT = Duration.ofMinutes(2);
  private static KaonNode.Running node;
  private static ActorSystem<Void> clientSystem;
  private static JobServiceClient jobs;
  private static ClusterServiceClient cluster;

  @TempDir static Path modelDir;

  @BeforeAll
  static void start() {
    var config = kaon.runtime.TestNodes.withOwnJournal(ConfigFactory.empty()
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.worker.model-dir", ConfigValueFactory.fromAnyRef(modelDir.toString()))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef(TOKEN))
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(2))
        .withValue("kaon.management.enabled", ConfigValueFactory.fromAnyRef(true))
        .withValue("kaon.management.port", ConfigValueFactory.fromAnyRef(0))
        .withFallback(ConfigFactory.load()));
    node = KaonNode.startLocal(config, TaskCatalog.load(GrpcApiTest.class.getClassLoader()), line -> {});
    clientSystem = ActorSystem.create(Behaviors.empty(), "client",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.remote.artery.enabled = off")
            .withFallback(ConfigFactory.load()));
    GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clientSystem).withTls(false);
    jobs = JobServiceClient.create(settings, clientSystem);
    cluster = ClusterServiceClient.create(settings, clientSystem);
  }

  @AfterAll
  static void stop() throws Exception {
    jobs.close().toCompletableFuture().get(10, TimeUnit.SECONDS);
    cluster.close().toCompletableFuture().get(10, TimeUnit.SECONDS);
    clientSystem.terminate();
    node.system().terminate();
    node.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static final String BEARER = "Bearer " + TOKEN;

  @Test
  void healthAndReadinessAreServedWithoutAToken() throws Exception {
    HealthClient health = HealthClient.create(
        GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clientSystem).withTls(false), clientSystem);
    try {
      long deadline = System.nanoTime() + WAIT.toNanos();
      HealthCheckResponse.ServingStatus status;
      do {
        status = await(health.check(HealthCheckRequest.getDefaultInstance())).getStatus();
      } while (status != HealthCheckResponse.ServingStatus.SERVING && System.nanoTime() < deadline);
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, status);
      assertEquals(HealthCheckResponse.ServingStatus.SERVING,
          await(health.check(HealthCheckRequest.newBuilder().setService("kaon.v1.JobService").build())).getStatus());
      assertEquals(Status.Code.NOT_FOUND, code(health.check(HealthCheckRequest.newBuilder().setService("kaon.v1.Nope").build())));
    } finally {
      health.close();
    }
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    for (String path : List.of("alive", "ready")) {
      java.net.http.HttpResponse<String> answer = http.send(java.net.http.HttpRequest.newBuilder(
          java.net.URI.create(node.managementUrl()).resolve("/" + path)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
      assertEquals(200, answer.statusCode(), path + ": " + answer.body());
      assertEquals(path + "\n", answer.body());
    }
  }

  private static <T> T await(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
  }

  private static Status.Code code(CompletionStage<?> stage) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(stage));
    assertTrue(e.getCause() instanceof StatusRuntimeException, e.getCause().toString());
    return ((StatusRuntimeException) e.getCause()).getStatus().getCode();
  }

  private static String description(CompletionStage<?> stage) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(stage));
    StatusRuntimeException s = (StatusRuntimeException) e.getCause();
    assertEquals(Status.Code.INVALID_ARGUMENT, s.getStatus().getCode(), s.toString());
    return s.getStatus().getDescription();
  }

  private static JobSpecification.Builder spec() {
    return JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2).setEpochs(1);
  }

  private static CompletionStage<Job> submit(String requestId, JobSpecification.Builder spec) {
    return jobs.submitJob().addHeader("authorization", BEARER)
        .invoke(SubmitJobRequest.newBuilder().setRequestId(requestId).setSpec(spec).build());
  }

  /** The ids of the jobs on every page of {@code request}, following the tokens. */
  private static List<String> listJobs(ListJobsRequest.Builder request) throws Exception {
    List<String> ids = new java.util.ArrayList<>();
    String token = "";
    do {
      var page = await(jobs.listJobs().addHeader("authorization", BEARER).invoke(request.setPageToken(token).build()));
      page.getJobsList().forEach(j -> ids.add(j.getJobId()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return ids;
  }

  /**
   * With jobs that have not ended, whose coordinators stay in memory: a listing asks every job's
   * coordinator, and an ended job's is started again for it and leaves at once.
   */
  @Test
  void jobsAreListedNewestFirstAPageAtATimeInThePhasesAskedFor() throws Exception {
    String older = await(submit("list-a-" + UUID.randomUUID(), spec().setEpochs(50))).getJobId();
    String newer = await(submit("list-b-" + UUID.randomUUID(), spec().setEpochs(50))).getJobId();
    try {
      ListJobsRequest.Builder active = ListJobsRequest.newBuilder().addPhases(JobPhase.STARTING).addPhases(JobPhase.RUNNING);
      List<String> onePage = listJobs(active);
      assertTrue(onePage.indexOf(newer) >= 0 && onePage.indexOf(newer) < onePage.indexOf(older), onePage.toString());
      assertEquals(onePage, listJobs(active.setPageSize(1)), "the same jobs in the same order, one per page");
      assertFalse(listJobs(ListJobsRequest.newBuilder().addPhases(JobPhase.SUCCEEDED)).contains(newer));
    } finally {
      for (String id : List.of(older, newer)) {
        await(jobs.cancelJob().addHeader("authorization", BEARER).invoke(CancelJobRequest.newBuilder().setJobId(id).build()));
      }
    }
  }

  private static List<JobEvent> watchToEnd(String jobId) throws Exception {
    return await(jobs.watchJob().addHeader("authorization", BEARER)
        .invoke(WatchJobRequest.newBuilder().setJobId(jobId).build())
        .runWith(Sink.seq(), clientSystem));
  }

  @Test
  void aJobSubmittedIsWatchedFromSubmitToFinish() throws Exception {
    Job job = await(submit("watch-" + UUID.randomUUID(), spec().setMaxSteps(60)));
    assertEquals(2, job.getWorldSize());
    List<JobEvent> events = watchToEnd(job.getJobId());
    JobEvent last = events.get(events.size() - 1);
    assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
    assertEquals(60, last.getStatus().getStepsDone());
    assertTrue(events.stream().anyMatch(JobEvent::hasEpoch), "an epoch result was streamed");
    assertEquals(64, last.getStatus().getDigest().length());

    Job got = await(jobs.getJob().addHeader("authorization", BEARER).invoke(GetJobRequest.newBuilder().setJobId(job.getJobId()).build()));
    assertEquals(JobPhase.SUCCEEDED, got.getPhase());
    assertEquals("fashion-mnist-mlp", got.getSpec().getTask());
    assertEquals(128, got.getSpec().getGlobalBatch(), "defaults are filled in");
    // One node: its coordinator runs here, and the job names it.
    assertEquals(node.system().address().toString(), got.getCoordinatorNode());
    // Its first generation is formed with the submission; it ended after both.
    assertTrue(got.hasCreatedAt() && got.hasEndedAt(), got.toString());
    assertEquals(got.getCreatedAt(), got.getStartedAt());
    assertTrue(Timestamps.compare(got.getEndedAt(), got.getCreatedAt()) >= 0, got.toString());

    var listed = await(jobs.listJobs().addHeader("authorization", BEARER).invoke(ListJobsRequest.getDefaultInstance()));
    assertTrue(listed.getJobsList().stream().anyMatch(j -> j.getJobId().equals(job.getJobId())), listed.toString());

    assertEquals(Status.Code.FAILED_PRECONDITION,
        code(jobs.cancelJob().addHeader("authorization", BEARER).invoke(CancelJobRequest.newBuilder().setJobId(job.getJobId()).build())));
    assertEquals(Status.Code.FAILED_PRECONDITION, code(jobs.scaleJob().addHeader("authorization", BEARER)
        .invoke(ScaleJobRequest.newBuilder().setJobId(job.getJobId()).setMinWorkers(1).setMaxWorkers(1).build())));
  }

  private static CompletionStage<List<ModelChunk>> download(String jobId) {
    return jobs.downloadModel().addHeader("authorization", BEARER)
        .invoke(DownloadModelRequest.newBuilder().setJobId(jobId).build())
        .runWith(Sink.seq(), clientSystem);
  }

  @Test
  void theModelLandsUnderTheNodesModelDirectoryAndDownloadsWithTheJobsDigest() throws Exception {
    Job job = await(submit("model-" + UUID.randomUUID(), spec().setMinWorkers(1).setMaxWorkers(1).setMaxSteps(5)
        .setModelOutput("runs/tiny.params")));
    List<JobEvent> events = watchToEnd(job.getJobId());
    Job done = events.get(events.size() - 1).getStatus();
    assertEquals(JobPhase.SUCCEEDED, done.getPhase(), done.toString());
    Path file = modelDir.resolve("runs/tiny.params");
    assertTrue(Files.size(file) > 400_000, file + " holds " + Files.size(file) + " bytes");

    List<ModelChunk> chunks = await(download(job.getJobId()));
    // The node's 1 MiB chunks: this model fits in one, but the stream does not rely on it.
    ByteArrayOutputStream model = new ByteArrayOutputStream();
    for (ModelChunk chunk : chunks) {
      chunk.getData().writeTo(model);
    }
    assertEquals(done.getDigest(), chunks.get(0).getSha256(), "the sha256 sent is the job's digest");
    assertEquals(model.size(), chunks.get(0).getTotalBytes());
    assertEquals(done.getDigest(), HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(model.toByteArray())));
    assertArrayEquals(Files.readAllBytes(file), model.toByteArray(), "the stored model is the file rank 0 wrote");

    // A job whose model is not stored (it succeeded before Kaon stored models) has none to give.
    CqlSession cql = await(CassandraSessionRegistry.get(node.system()).sessionFor(CassandraSessionSettings.create()).underlying());
    String keyspace = node.system().settings().config().getString("kaon.checkpoint.keyspace");
    cql.execute(SimpleStatement.newInstance("DELETE FROM " + keyspace + ".models WHERE job_id = ? AND sha256 = ?",
        job.getJobId(), done.getDigest()));
    assertEquals(Status.Code.NOT_FOUND, code(download(job.getJobId())));
  }

  @Test
  void onlyASucceededJobsModelCanBeDownloaded() throws Exception {
    assertEquals(Status.Code.NOT_FOUND, code(download("no-such-job-" + UUID.randomUUID().toString().substring(0, 8))));
    assertTrue(description(download("no spaces")).startsWith("job_id:"));
    assertEquals(Status.Code.UNAUTHENTICATED, code(jobs.downloadModel(DownloadModelRequest.newBuilder().setJobId("x").build())
        .runWith(Sink.seq(), clientSystem)));
    Job job = await(submit("unfinished-" + UUID.randomUUID(), spec().setMinWorkers(1).setMaxWorkers(1).setEpochs(50)));
    assertEquals(Status.Code.FAILED_PRECONDITION, code(download(job.getJobId())));
    await(jobs.cancelJob().addHeader("authorization", BEARER).invoke(CancelJobRequest.newBuilder().setJobId(job.getJobId()).build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, code(download(job.getJobId())));
  }

  @Test
  void submitIsIdempotentForARequestId() throws Exception {
    String requestId = "idem-" + UUID.randomUUID();
    Job first = await(submit(requestId, spec().setMaxSteps(5)));
    Job again = await(submit(requestId, spec().setMaxSteps(5)));
    assertEquals(first.getJobId(), again.getJobId());
    assertEquals(Status.Code.ALREADY_EXISTS, code(submit(requestId, spec().setMaxSteps(6))));
    watchToEnd(first.getJobId());
  }

  @Test
  void everyInvalidFieldIsNamed() {
    assertTrue(description(submit("", JobSpecification.newBuilder().setMinWorkers(1).setMaxWorkers(1))).startsWith("spec.task: is required"));
    assertTrue(description(submit("", spec().setTask("imagenet"))).startsWith("spec.task: unknown task 'imagenet'"));
    assertTrue(description(submit("", spec().setMinWorkers(3).setMaxWorkers(2))).startsWith("spec.max_workers:"));
    assertTrue(description(submit("", spec().setMinWorkers(0))).startsWith("spec.min_workers:"));
    assertTrue(description(submit("", spec().setEpochs(0))).startsWith("spec.epochs:"));
    assertTrue(description(submit("", spec().setGlobalBatch(1))).startsWith("spec.global_batch: 1 examples cannot be split over 2"));
    assertTrue(description(submit("", spec().setLearningRate(-1))).startsWith("spec.learning_rate:"));
    assertTrue(description(submit("", spec().setOptimizer("lbfgs"))).startsWith("spec.optimizer:"));
    assertTrue(description(submit("", spec().setModelOutput("/tmp/" + "x".repeat(100_000)))).startsWith("spec: is "));
    // A relative name under the node's model directory, nothing else: no caller makes a node
    // write where it chooses.
    for (String outside : List.of("/tmp/mlp.params", "../mlp.params", "runs/../../mlp.params", "runs//mlp.params",
        "runs\\mlp.params", "mlp\n.params", "m".repeat(256))) {
      String refused = description(submit("", spec().setModelOutput(outside)));
      assertTrue(refused.startsWith("spec.model_output: must "), outside + ": " + refused);
    }
    assertTrue(description(jobs.submitJob().addHeader("authorization", BEARER).invoke(SubmitJobRequest.getDefaultInstance()))
        .startsWith("spec: is required"));
    assertTrue(description(jobs.getJob().addHeader("authorization", BEARER).invoke(GetJobRequest.newBuilder().setJobId("no spaces").build()))
        .startsWith("job_id:"));
    assertTrue(description(jobs.scaleJob().addHeader("authorization", BEARER)
        .invoke(ScaleJobRequest.newBuilder().setJobId("x").setMinWorkers(2).setMaxWorkers(1).build())).startsWith("max_workers:"));
    assertTrue(description(jobs.listJobs().addHeader("authorization", BEARER)
        .invoke(ListJobsRequest.newBuilder().setPageSize(1001).build())).startsWith("page_size:"));
    assertTrue(description(jobs.listJobs().addHeader("authorization", BEARER)
        .invoke(ListJobsRequest.newBuilder().setPageToken("not-a-token").build())).startsWith("page_token:"));
  }

  @Test
  void unknownJobsAreNotFound() {
    GetJobRequest unknown = GetJobRequest.newBuilder().setJobId("no-such-job-" + UUID.randomUUID().toString().substring(0, 8)).build();
    assertEquals(Status.Code.NOT_FOUND, code(jobs.getJob().addHeader("authorization", BEARER).invoke(unknown)));
    assertEquals(Status.Code.NOT_FOUND, code(jobs.cancelJob().addHeader("authorization", BEARER)
        .invoke(CancelJobRequest.newBuilder().setJobId(unknown.getJobId()).build())));
    assertEquals(Status.Code.NOT_FOUND, code(jobs.watchJob().addHeader("authorization", BEARER)
        .invoke(WatchJobRequest.newBuilder().setJobId(unknown.getJobId()).build()).runWith(Sink.seq(), clientSystem)));
  }

  @Test
  void aRunningJobScalesToItsNewBoundsAndCanBeCancelled() throws Exception {
    Job job = await(submit("scale-" + UUID.randomUUID(), spec().setEpochs(50).setCheckpointEverySteps(20)));
    var stream = jobs.watchJob().addHeader("authorization", BEARER)
        .invoke(WatchJobRequest.newBuilder().setJobId(job.getJobId()).build());
    CompletableFuture<List<JobEvent>> events = stream.runWith(Sink.seq(), clientSystem).toCompletableFuture();
    // Scaled down once training is under way.
    Job running = job;
    while (!running.hasLatestCheckpoint()) {
      running = await(jobs.getJob().addHeader("authorization", BEARER).invoke(GetJobRequest.newBuilder().setJobId(job.getJobId()).build()));
    }
    Job scaled = await(jobs.scaleJob().addHeader("authorization", BEARER)
        .invoke(ScaleJobRequest.newBuilder().setJobId(job.getJobId()).setMinWorkers(1).setMaxWorkers(1).build()));
    assertEquals(1, scaled.getSpec().getMaxWorkers());
    Job resized = scaled;
    while (resized.getWorldSize() != 1 || resized.getPhase() != JobPhase.RUNNING) {
      resized = await(jobs.getJob().addHeader("authorization", BEARER).invoke(GetJobRequest.newBuilder().setJobId(job.getJobId()).build()));
    }
    assertEquals(2, resized.getGeneration());
    // Both ranks held the state when the job shrank: the one kept goes on from its memory.
    assertTrue(resized.getStateSource().startsWith("memory:"), resized.getStateSource());
    // The history says how: the first generation, then the one the scaling formed, and why.
    assertEquals(2, resized.getGenerationsCount(), resized.getGenerationsList().toString());
    assertEquals("job submitted", resized.getGenerations(0).getReason());
    assertEquals("scaled to 1..1 workers", resized.getGenerations(1).getReason());
    assertEquals(1, resized.getGenerations(1).getWorkersCount());
    assertTrue(resized.getGenerations(1).getAtMillis() >= resized.getGenerations(0).getAtMillis());
    Job cancelled = await(jobs.cancelJob().addHeader("authorization", BEARER)
        .invoke(CancelJobRequest.newBuilder().setJobId(job.getJobId()).build()));
    assertEquals(JobPhase.CANCELLED, cancelled.getPhase());
    List<JobEvent> seen = events.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertEquals(JobPhase.CANCELLED, seen.get(seen.size() - 1).getStatus().getPhase());
  }

  @Test
  void theClusterListsItsMembersAndDevices() throws Exception {
    var members = await(cluster.listMembers().addHeader("authorization", BEARER).invoke(ListMembersRequest.getDefaultInstance()));
    assertEquals(1, members.getMembersCount());
    assertEquals("Up", members.getMembers(0).getStatus());
    // The node's agent registers with the receptionist as the node starts: wait for it to show.
    long deadline = System.nanoTime() + WAIT.toNanos();
    var devices = await(cluster.listDevices().addHeader("authorization", BEARER).invoke(ListDevicesRequest.getDefaultInstance()));
    while (devices.getDevicesCount() == 0 && System.nanoTime() < deadline) {
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
      devices = await(cluster.listDevices().addHeader("authorization", BEARER).invoke(ListDevicesRequest.getDefaultInstance()));
    }
    assertEquals(2, devices.getDevicesCount(), devices.toString());
    assertEquals(Status.Code.NOT_FOUND, code(cluster.drainNode().addHeader("authorization", BEARER)
        .invoke(DrainNodeRequest.newBuilder().setAddress("pekko://kaon@10.9.9.9:1").build())));
  }

  @Test
  void callsWithoutTheTokenOrWithAWrongOneAreRefused() {
    assertEquals(Status.Code.UNAUTHENTICATED, code(jobs.listJobs(ListJobsRequest.getDefaultInstance())));
    assertEquals(Status.Code.UNAUTHENTICATED,
        code(jobs.listJobs().addHeader("authorization", "Bearer wrong").invoke(ListJobsRequest.getDefaultInstance())));
    assertEquals(Status.Code.UNAUTHENTICATED,
        code(cluster.listMembers().addHeader("authorization", "Bearer wrong").invoke(ListMembersRequest.getDefaultInstance())));
    assertEquals(Status.Code.UNAUTHENTICATED, code(jobs.watchJob(WatchJobRequest.newBuilder().setJobId("x").build())
        .runWith(Sink.seq(), clientSystem)));
  }

  @Test
  void reflectionListsTheServicesForGenericTools() throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", node.grpcPort()).usePlaintext().build();
    try {
      CompletableFuture<List<String>> names = new CompletableFuture<>();
      StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel).serverReflectionInfo(
          new StreamObserver<>() {
            @Override
            public void onNext(ServerReflectionResponse response) {
              names.complete(response.getListServicesResponse().getServiceList().stream().map(ServiceResponse::getName).toList());
            }

            @Override
            public void onError(Throwable t) {
              names.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
          });
      requests.onNext(ServerReflectionRequest.newBuilder().setListServices("*").build());
      List<String> services = names.get(30, TimeUnit.SECONDS);
      requests.onCompleted();
      assertTrue(services.containsAll(List.of("kaon.v1.JobService", "kaon.v1.ClusterService")), services.toString());
    } finally {
      channel.shutdownNow();
    }
  }
}
