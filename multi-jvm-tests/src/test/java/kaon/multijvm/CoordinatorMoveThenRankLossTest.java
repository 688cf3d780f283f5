package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.WatchJobRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.Test;

/**
 * The job's coordinator moves while its ring trains on, and a rank is lost afterwards. Two
 * coordinator nodes without devices and two worker nodes (two devices and one): the node that
 * hosts the job's coordinator is SIGKILLed, the coordinator recovers on the other one and finds
 * every rank still training (no new generation); then the one-device worker node is SIGKILLed.
 * The ranks that survive must tell the coordinator where it is now, not where it was when their
 * generation was formed, or the job waits forever.
 */
class CoordinatorMoveThenRankLossTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void aRankLostAfterTheCoordinatorMovedReFormsTheJob() throws Exception {
    double faultFree = KaonProcess.faultFreeAccuracy(4);

    String token = UUID.randomUUID().toString();
    String bearer = "Bearer " + token;
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    int seedPort = KaonProcess.freePort();
    int apiA = KaonProcess.freePort();
    int apiB = KaonProcess.freePort();
    int portB = KaonProcess.freePort();
    String seed = "127.0.0.1:" + seedPort;
    String jobId = "moved-coordinator-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start("moved-coordinator-a", env, "node", "--roles", "gateway,coordinator",
            "--port", Integer.toString(seedPort), "--api-port", Integer.toString(apiA));
        KaonProcess b = KaonProcess.start("moved-coordinator-b", env, "node", "--roles", "gateway,coordinator",
            "--seed", seed, "--port", Integer.toString(portB), "--api-port", Integer.toString(apiB));
        KaonProcess twoDevices = KaonProcess.start("moved-coordinator-w2", env, "node", "--roles", "worker",
            "--devices", "2", "--seed", seed);
        KaonProcess oneDevice = KaonProcess.start("moved-coordinator-w1", env, "node", "--roles", "worker",
            "--devices", "1", "--seed", seed)) {
      ClusterServiceClient cluster = ClusterServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiA, client).withTls(false), client);
      KaonProcess.awaitMembersUp(cluster, bearer, 4, WAIT);
      JobServiceClient jobsA = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiA, client).withTls(false), client);
      KaonProcess.submit(jobsA, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp")
          .setMinWorkers(2).setMaxWorkers(3).setEpochs(4).setCheckpointEverySteps(25));

      // Early in the first epoch (a checkpoint at step 50 or later); the API names the coordinator's node.
      Job early = KaonProcess.awaitJob(jobsA, bearer, jobId,
          j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 50, "checkpoint at step 50 or later", WAIT);
      KaonProcess host = KaonProcess.byAddress(Map.of(seedPort, a, portB, b), early.getCoordinatorNode());
      JobServiceClient jobs = JobServiceClient.create(GrpcClientSettings.connectToServiceAt(
          "127.0.0.1", host == a ? apiB : apiA, client).withTls(false), client);
      Job before = get(jobs, bearer, jobId);
      assertEquals(3, before.getWorldSize(), before.toString());
      host.kill();

      // The coordinator recovers on the other node. Progress inside the epoch reaches a watcher
      // only from a coordinator the ranks know: the recovered one, once they have reattached.
      List<JobEvent> events = new CopyOnWriteArrayList<>();
      CompletableFuture<?> watching = watch(jobs, bearer, jobId, events, client);
      awaitProgress(events, WAIT);
      Job reattached = get(jobs, bearer, jobId);
      assertEquals(before.getGeneration(), reattached.getGeneration(),
          "the ranks should have kept training their generation: " + reattached);

      long rankLostAt = System.currentTimeMillis();
      oneDevice.kill();
      watching.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      Job last = get(jobs, bearer, jobId);
      assertEquals(JobPhase.SUCCEEDED, last.getPhase(), last.toString());
      var reformed = last.getGenerationsList().stream()
          .filter(g -> g.getGeneration() > before.getGeneration()).findFirst().orElseThrow(
              () -> new AssertionError("no generation after the rank loss: " + last));
      assertEquals(2, reformed.getWorldSize(), reformed.toString());
      double seconds = (reformed.getAtMillis() - rankLostAt) / 1e3;
      double accuracy = last.getTestAccuracy();
      KaonProcess.assertEachSampleUsedOnce(events.get(events.size() - 1), 4);
      System.out.printf("rank lost after the coordinator moved: re-formed on 2 ranks %.1f s later (%s); "
          + "accuracy %.4f vs fault-free %.4f%n", seconds, reformed.getReason(), accuracy, faultFree);
      assertTrue(Math.abs(accuracy - faultFree) <= 0.015, "accuracy " + accuracy + " vs fault-free " + faultFree);
      for (KaonProcess p : List.of(host == a ? b : a, twoDevices)) {
        p.stop();
      }
    } finally {
      client.terminate();
    }
  }

  private static Job get(JobServiceClient jobs, String bearer, String jobId) throws Exception {
    return jobs.getJob().addHeader("authorization", bearer)
        .invoke(GetJobRequest.newBuilder().setJobId(jobId).build())
        .toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  /** Watches the job, each event into {@code events}; completes when the job has ended. */
  private static CompletableFuture<?> watch(JobServiceClient jobs, String bearer, String jobId,
      List<JobEvent> events, ActorSystem<?> client) {
    return jobs.watchJob().addHeader("authorization", bearer)
        .invoke(WatchJobRequest.newBuilder().setJobId(jobId).build())
        .runWith(Sink.foreach(events::add), client).toCompletableFuture();
  }

  private static void awaitProgress(List<JobEvent> events, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (events.stream().noneMatch(JobEvent::hasProgress)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no progress within " + timeout + " after the coordinator moved: " + events);
      }
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
    }
  }
}
