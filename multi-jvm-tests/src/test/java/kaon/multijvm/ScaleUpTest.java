package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListMembersRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * A job of 1..3 workers starts on the two devices of two nodes; a third node joins mid-epoch. The
 * job grows onto it (a new generation of 3 ranks) and finishes with the accuracy of a fault-free
 * run. A retry of the submission after the growth returns the same job.
 */
class ScaleUpTest {

  private static final Duration WAIT = Duration.ofMinutes(4);
  /** Long enough that the job still trains once the new node has started and joined. */
  private static final int EPOCHS = 4;

  @Test
  void aJobGrowsOntoANodeThatJoinsMidEpoch() throws Exception {
    double faultFree = KaonProcess.faultFreeAccuracy(EPOCHS);

    String token = UUID.randomUUID().toString();
    // Over the tensor link: the new rank's state arrives through it.
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token, "KAON_ALLREDUCE_TRANSPORT", "link"));
    int seedPort = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    String jobId = "scale-up-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start("scale-up-a", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", Integer.toString(apiPort));
        KaonProcess b = KaonProcess.start("scale-up-b", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--roles", "worker")) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      String bearer = "Bearer " + token;
      KaonProcess.awaitMembersUp(cluster, bearer, 2, WAIT);
      // 2 of its 1..3 ranks at first, the devices free when it is submitted.
      JobSpecification.Builder spec = JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(3)
          .setEpochs(EPOCHS).setCheckpointEverySteps(50);
      KaonProcess.submit(jobs, bearer, jobId, spec);
      var watched = KaonProcess.watch(jobs, bearer, jobId, client);

      // Mid-epoch, with checkpoints committed, a third node with a free device joins.
      KaonProcess.awaitJob(jobs, bearer, jobId,
          j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 100, "checkpoint at step 100 or later", WAIT);
      int portC = KaonProcess.freePort();
      try (KaonProcess c = KaonProcess.start("scale-up-c", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
          "--port", Integer.toString(portC), "--roles", "worker")) {
        long joinedAt = System.nanoTime();
        Job grownJob = KaonProcess.awaitJob(jobs, bearer, jobId, j -> generation2Of3(j) != null, "generation 2 of 3 ranks", WAIT);
        double seconds = (System.nanoTime() - joinedAt) / 1e9;
        Generation grown = generation2Of3(grownJob);
        KaonProcess.awaitDeviceOwned(cluster, bearer, "pekko://kaon@127.0.0.1:" + portC, jobId, WAIT);
        // A client that retries its submission now (no device is free) gets the same job: the
        // start size it would resolve now is not part of what makes a submission the same.
        var retried = jobs.submitJob().addHeader("authorization", bearer)
            .invoke(kaon.protocol.v1.SubmitJobRequest.newBuilder().setRequestId(jobId).setSpec(spec).build())
            .toCompletableFuture().get(60, TimeUnit.SECONDS);
        assertEquals(jobId, retried.getJobId());
        List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        JobEvent last = events.get(events.size() - 1);
        assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
        KaonProcess.assertEachSampleUsedOnce(last, EPOCHS);
        assertEquals(3, last.getStatus().getWorldSize());
        double accuracy = last.getStatus().getTestAccuracy();
        System.out.printf("node joined: job grew to 3 ranks %.1f s after the node started (from step %s); accuracy %.4f vs %.4f%n",
            seconds, grown.getResumeStep(), accuracy, faultFree);
        assertTrue(Math.abs(accuracy - faultFree) <= 0.015, "accuracy " + accuracy + " vs fault-free " + faultFree);
        c.stop();
      }
      jobs.close();
      cluster.close();
      b.stop();
      a.stop();
    } finally {
      client.terminate();
    }
  }

  /** Generation 2 if it has 3 ranks, else null. */
  private static Generation generation2Of3(Job job) {
    return job.getGenerationsList().stream()
        .filter(g -> g.getGeneration() == 2 && g.getWorldSize() == 3).findFirst().orElse(null);
  }
}
