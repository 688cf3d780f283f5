package kaon.runtime.cli.client;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;
import kaon.protocol.v1.CancelJobRequest;
import kaon.protocol.v1.CheckpointRef;
import kaon.protocol.v1.ClusterServicePowerApi;
import kaon.protocol.v1.Device;
import kaon.protocol.v1.DownloadModelRequest;
import kaon.protocol.v1.DrainNodeRequest;
import kaon.protocol.v1.DrainNodeResponse;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServicePowerApi;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListDevicesResponse;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.ListMembersResponse;
import kaon.protocol.v1.Member;
import kaon.protocol.v1.LogLine;
import kaon.protocol.v1.ModelChunk;
import kaon.protocol.v1.StreamJobLogsRequest;
import kaon.protocol.v1.Progress;
import kaon.protocol.v1.ScaleJobRequest;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.protocol.v1.WatchJobRequest;
import org.apache.pekko.NotUsed;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;
import org.apache.pekko.stream.javadsl.Source;

/**
 * Canned answers in place of a Kaon node, to test the client side alone: one job, {@code job-1},
 * that trains two epochs and succeeds; {@code job-2}, whose watch stops while it still runs; every
 * call needs the token {@value #TOKEN}. {@code job-1} has a model to download. Jobs were submitted
 * (and started) at {@link #SUBMITTED}, and those that ended did so 90 s later.
 */
final class StubKaonApi implements JobServicePowerApi, ClusterServicePowerApi {

  static final String TOKEN = "stub-token";

  static final java.time.Instant SUBMITTED = java.time.Instant.ofEpochMilli(1_764_000_000_000L);

  /** Submissions as received, in order. */
  final List<SubmitJobRequest> submitted = new CopyOnWriteArrayList<>();

  /** ListJobs requests as received, in order. */
  final List<ListJobsRequest> listed = new CopyOnWriteArrayList<>();

  static EpochResult epoch(int n) {
    return EpochResult.newBuilder().setEpoch(n).setMeanLoss(0.5 / n).setTrainAccuracy(0.8).setTestAccuracy(0.79 + n / 100.0)
        .setSamplesPerSecond(30_000).setTrainSeconds(2).setWorldSize(2).setStepsDone(468L * n).build();
  }

  static Job job(JobPhase phase) {
    Job.Builder job = Job.newBuilder()
        .setJobId("job-1")
        .setPhase(phase)
        .setSpec(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2)
            .setEpochs(2).setGlobalBatch(128).setOptimizer("sgd").setLearningRate(0.1f).setSeed(42)
            .setCheckpointEverySteps(200))
        .setGeneration(1)
        .setStateSource("init")
        .setCoordinatorNode("pekko://kaon@10.0.0.7:25520")
        .setWorldSize(2)
        .setCreatedAt(com.google.protobuf.util.Timestamps.fromMillis(SUBMITTED.toEpochMilli()))
        .setStartedAt(com.google.protobuf.util.Timestamps.fromMillis(SUBMITTED.toEpochMilli()));
    if (JobEventPrinter.hasEnded(job.build())) {
      job.setEndedAt(com.google.protobuf.util.Timestamps.fromMillis(SUBMITTED.plusSeconds(90).toEpochMilli()));
    }
    if (phase == JobPhase.SUCCEEDED) {
      job.addEpochs(epoch(1)).addEpochs(epoch(2)).setStepsDone(936).setTestAccuracy(0.81).setDigest("d1g3st")
          .setLatestCheckpoint(CheckpointRef.newBuilder().setId("ck-4").setStep(800).setEpoch(2).setBytes(1_234_567))
          .setGeneration(2).setStateSource("memory:job-1-worker-0")
          .addGenerations(generation(1, 0, "job submitted", "init", 1_764_000_000_000L))
          .addGenerations(generation(2, 512, "rank 1 failed: all-reduce missed its deadline", "memory:job-1-worker-0",
              1_764_000_042_000L))
          .addRanks(kaon.protocol.v1.RankPlacement.newBuilder().setRank(0).setWorker(0).setNode("pekko://kaon@10.0.0.7:25520")
              .setDevice("cpu:0").setEdge("link").setEdgeReason("a tensor link to 10.0.0.8:7355"))
          .addRanks(kaon.protocol.v1.RankPlacement.newBuilder().setRank(1).setWorker(2).setNode("pekko://kaon@10.0.0.8:25520")
              .setDevice("cpu:0"));
    }
    return job.build();
  }

  static kaon.protocol.v1.Generation generation(long number, long step, String reason, String source, long atMillis) {
    return kaon.protocol.v1.Generation.newBuilder().setGeneration(number).setWorldSize(2).setResumeStep(step)
        .setReason(reason).setStateSource(source).addWorkers(0).addWorkers((int) number).setAtMillis(atMillis).build();
  }

  @Override
  public CompletionStage<Job> submitJob(SubmitJobRequest in, Metadata metadata) {
    return authorized(metadata, () -> {
      if (in.getSpec().getTask().equals("bad")) {
        throw new GrpcServiceException(Status.INVALID_ARGUMENT.withDescription("task: unknown task 'bad'"));
      }
      submitted.add(in);
      return job(JobPhase.STARTING);
    });
  }

  @Override
  public CompletionStage<Job> getJob(GetJobRequest in, Metadata metadata) {
    return authorized(metadata, () -> {
      if (!in.getJobId().equals("job-1")) {
        throw new GrpcServiceException(Status.NOT_FOUND.withDescription("no job " + in.getJobId()));
      }
      return job(JobPhase.SUCCEEDED);
    });
  }

  @Override
  public CompletionStage<ListJobsResponse> listJobs(ListJobsRequest in, Metadata metadata) {
    listed.add(in);
    Job second = job(JobPhase.RUNNING).toBuilder().setJobId("job-2").addEpochs(epoch(1)).setHealth("journal down")
        .setSpec(job(JobPhase.RUNNING).getSpec().toBuilder().setMinWorkers(1).setMaxWorkers(4)).build();
    // Pages of one job: job-1, then job-2 after the token; other sizes get both (filters aside).
    ListJobsResponse.Builder page = ListJobsResponse.newBuilder();
    if (in.getPageSize() != 1) {
      page.addJobs(job(JobPhase.SUCCEEDED)).addJobs(second);
    } else if (in.getPageToken().isEmpty()) {
      page.addJobs(job(JobPhase.SUCCEEDED)).setNextPageToken("after-job-1");
    } else {
      page.addJobs(second);
    }
    return authorized(metadata, page::build);
  }

  @Override
  public Source<JobEvent, NotUsed> watchJob(WatchJobRequest in, Metadata metadata) {
    if (!metadata.getText("authorization").equals(Optional.of("Bearer " + TOKEN))) {
      return Source.failed(new GrpcServiceException(Status.UNAUTHENTICATED));
    }
    if (in.getJobId().equals("job-2")) {
      return Source.single(JobEvent.newBuilder().setStatus(job(JobPhase.RUNNING).toBuilder().setJobId("job-2")).build());
    }
    JobEvent running = JobEvent.newBuilder().setStatus(job(JobPhase.RUNNING)).build();
    return Source.from(List.of(
        running,
        JobEvent.newBuilder().setProgress(Progress.newBuilder().setEpoch(1).setStep(10).setStepsPerEpoch(468)).build(),
        JobEvent.newBuilder().setEpoch(epoch(1)).build(),
        JobEvent.newBuilder().setEpoch(epoch(2)).build(),
        JobEvent.newBuilder().setStatus(job(JobPhase.SUCCEEDED)).build()));
  }

  /** {@code job-1}'s log: a line of its coordinator's node, then one of a worker's node. */
  @Override
  public Source<LogLine, NotUsed> streamJobLogs(StreamJobLogsRequest in, Metadata metadata) {
    if (!metadata.getText("authorization").equals(Optional.of("Bearer " + TOKEN))) {
      return Source.failed(new GrpcServiceException(Status.UNAUTHENTICATED));
    }
    if (!in.getJobId().equals("job-1")) {
      return Source.failed(new GrpcServiceException(Status.NOT_FOUND.withDescription("job " + in.getJobId() + " does not exist")));
    }
    List<LogLine> lines = List.of(
        LogLine.newBuilder().setAtMillis(1_000).setNode("pekko://kaon@10.0.0.1:25520").setLevel("INFO")
            .setLogger("Generations").setMessage("job job-1: generation 1 of 2 ranks resumes at step 0 from init").build(),
        LogLine.newBuilder().setAtMillis(2_000).setNode("pekko://kaon@10.0.0.2:25520").setLevel("WARN")
            .setLogger("CheckpointWriter").setMessage("job job-1: checkpoint at step 200 not written; retrying").build());
    return Source.from(in.getTail() > 0 ? lines.subList(lines.size() - Math.min(in.getTail(), lines.size()), lines.size()) : lines);
  }

  /** The model of {@code job-1}: three chunks of what a DJL file could hold. */
  static final byte[] MODEL = "PARAMS-of-job-1 ".repeat(1000).getBytes(java.nio.charset.StandardCharsets.UTF_8);

  /**
   * {@code job-1}'s model in three chunks with its sha256; {@code job-damaged}'s arrives with one
   * byte changed on the way; {@code job-2} still runs; other jobs do not exist.
   */
  @Override
  public Source<ModelChunk, NotUsed> downloadModel(DownloadModelRequest in, Metadata metadata) {
    if (!metadata.getText("authorization").equals(Optional.of("Bearer " + TOKEN))) {
      return Source.failed(new GrpcServiceException(Status.UNAUTHENTICATED));
    }
    if (in.getJobId().equals("job-2")) {
      return Source.failed(new GrpcServiceException(Status.FAILED_PRECONDITION.withDescription("job job-2 is RUNNING")));
    }
    if (!in.getJobId().equals("job-1") && !in.getJobId().equals("job-damaged")) {
      return Source.failed(new GrpcServiceException(Status.NOT_FOUND.withDescription("job " + in.getJobId() + " does not exist")));
    }
    byte[] sent = MODEL.clone();
    if (in.getJobId().equals("job-damaged")) {
      sent[MODEL.length / 2] ^= 1;
    }
    int third = MODEL.length / 3;
    return Source.from(List.of(
        ModelChunk.newBuilder().setData(ByteString.copyFrom(sent, 0, third)).setSha256(sha256(MODEL))
            .setTotalBytes(MODEL.length).build(),
        ModelChunk.newBuilder().setData(ByteString.copyFrom(sent, third, third)).build(),
        ModelChunk.newBuilder().setData(ByteString.copyFrom(sent, 2 * third, MODEL.length - 2 * third)).build()));
  }

  static String sha256(byte[] bytes) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public CompletionStage<Job> cancelJob(CancelJobRequest in, Metadata metadata) {
    return authorized(metadata, () -> job(JobPhase.CANCELLED).toBuilder().setMessage("cancelled by a user").build());
  }

  @Override
  public CompletionStage<Job> scaleJob(ScaleJobRequest in, Metadata metadata) {
    return authorized(metadata, () -> {
      Job job = job(JobPhase.RUNNING);
      return job.toBuilder()
          .setSpec(job.getSpec().toBuilder().setMinWorkers(in.getMinWorkers()).setMaxWorkers(in.getMaxWorkers()))
          .build();
    });
  }

  @Override
  public CompletionStage<ListMembersResponse> listMembers(ListMembersRequest in, Metadata metadata) {
    return authorized(metadata, () -> ListMembersResponse.newBuilder()
        .addMembers(Member.newBuilder().setAddress("pekko://kaon@10.0.0.5:25520").setStatus("Up")
            .addRoles("worker").addRoles("coordinator").setReachable(true))
        .build());
  }

  @Override
  public CompletionStage<ListDevicesResponse> listDevices(ListDevicesRequest in, Metadata metadata) {
    return authorized(metadata, () -> ListDevicesResponse.newBuilder()
        .addDevices(Device.newBuilder().setNode("10.0.0.5:25520").setId("cpu-0").setDevice("cpu").setThreads(1)
            .setOwner("job-1/0"))
        .addDevices(Device.newBuilder().setNode("10.0.0.5:25520").setId("cpu-1").setDevice("cpu").setThreads(1))
        .build());
  }

  @Override
  public CompletionStage<DrainNodeResponse> drainNode(DrainNodeRequest in, Metadata metadata) {
    return CompletableFuture.failedFuture(new GrpcServiceException(Status.UNIMPLEMENTED));
  }

  private static <T> CompletionStage<T> authorized(Metadata metadata, Supplier<T> answer) {
    if (!metadata.getText("authorization").equals(Optional.of("Bearer " + TOKEN))) {
      return CompletableFuture.failedFuture(new GrpcServiceException(Status.UNAUTHENTICATED));
    }
    try {
      return CompletableFuture.completedFuture(answer.get());
    } catch (GrpcServiceException e) {
      return CompletableFuture.failedFuture(e);
    }
  }
}
