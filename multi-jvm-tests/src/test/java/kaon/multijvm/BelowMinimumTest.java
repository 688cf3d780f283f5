package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
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
 * A job that needs 2 workers loses one of its 2 worker nodes (a third node, without devices,
 * keeps the cluster's majority so that the Split Brain Resolver downs the lost node rather than
 * the survivor): it cannot go on below its minimum, so it
 * waits and its status says why; when a new node brings a device, it resumes by itself from its
 * last checkpoint and finishes.
 */
class BelowMinimumTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void aJobBelowItsMinimumWaitsForDevicesAndResumesWhenOneArrives() throws Exception {
    String token = UUID.randomUUID().toString();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    int seedPort = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    String jobId = "below-min-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start("below-min-a", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", Integer.toString(apiPort));
        KaonProcess b = KaonProcess.start("below-min-b", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--roles", "worker");
        KaonProcess quorum = KaonProcess.start("below-min-quorum", env, "node", "--seed", "127.0.0.1:" + seedPort,
            "--roles", "gateway", "--api-port", Integer.toString(KaonProcess.freePort()))) {
      String bearer = "Bearer " + token;
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      KaonProcess.awaitMembersUp(cluster, bearer, 3, WAIT);
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2)
                  .setEpochs(2).setCheckpointEverySteps(50));
      CompletableFuture<List<JobEvent>> watched = KaonProcess.watch(jobs, bearer, jobId, client);
      Job training = KaonProcess.awaitJob(jobs, bearer, jobId,
          j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 150, "checkpoint at step 150 or later", WAIT);
      b.kill();

      // One device left for a job that needs two: it waits, and says so.
      KaonProcess.awaitJob(jobs, bearer, jobId,
          j -> j.getHealth().contains("waiting for devices: 1 available, needs at least 2"), "health saying it waits for devices", WAIT);
      assertTrue(watched.isDone() == false, "the job is still alive while it waits");

      // A new node brings a device: the job resumes by itself.
      try (KaonProcess c = KaonProcess.start("below-min-c", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
          "--roles", "worker")) {
        // The survivor kept its device and its state while the job waited: it goes on from its
        // memory, and the new node's worker receives the state from it.
        KaonProcess.awaitJob(jobs, bearer, jobId, j -> j.getGenerationsList().stream().anyMatch(g -> g.getGeneration() > training.getGeneration()
            && g.getWorldSize() == 2 && g.getStateSource().startsWith("memory:")), "generation of 2 ranks from the survivor's memory", WAIT);
        List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        JobEvent last = events.get(events.size() - 1);
        assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
        KaonProcess.assertEachSampleUsedOnce(last, 2);
        assertEquals(2, last.getStatus().getWorldSize());
        double accuracy = last.getStatus().getTestAccuracy();
        double faultFree = KaonProcess.faultFreeAccuracy(2);
        System.out.printf("below minimum: waited for a device, resumed on 2 ranks; accuracy %.4f vs fault-free %.4f%n",
            accuracy, faultFree);
        assertTrue(Math.abs(accuracy - faultFree) <= 0.015, "accuracy " + accuracy + " vs fault-free " + faultFree);
        c.stop();
      }
      jobs.close();
      cluster.close();
      quorum.stop();
      a.stop();
    } finally {
      client.terminate();
    }
  }
}
