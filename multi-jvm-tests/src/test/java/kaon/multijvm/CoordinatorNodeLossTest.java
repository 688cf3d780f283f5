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
 * Three node JVMs, each able to host job coordinators; the node that hosts the job's coordinator
 * is SIGKILLed mid-epoch. The coordinator must come back on another node from Cassandra, the job
 * re-form on the surviving devices and finish with the accuracy of a fault-free run, watched
 * throughout through a surviving gateway.
 */
class CoordinatorNodeLossTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void aJobLosesTheNodeOfItsCoordinatorAndFinishes() throws Exception {
    double faultFree = KaonProcess.faultFreeAccuracy(2);

    String token = UUID.randomUUID().toString();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    int seedPort = KaonProcess.freePort();
    int apiA = KaonProcess.freePort();
    int apiB = KaonProcess.freePort();
    int portB = KaonProcess.freePort();
    int portC = KaonProcess.freePort();
    String jobId = "coordinator-loss-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start("coordinator-loss-a", env, "node", "--devices", "1",
            "--port", Integer.toString(seedPort), "--api-port", Integer.toString(apiA));
        KaonProcess b = KaonProcess.start("coordinator-loss-b", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--port", Integer.toString(portB), "--api-port", Integer.toString(apiB));
        KaonProcess c = KaonProcess.start("coordinator-loss-c", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--port", Integer.toString(portC), "--roles", "worker,coordinator")) {
      List<KaonProcess> nodes = List.of(a, b, c);
      String bearer = "Bearer " + token;
      ClusterServiceClient clusterA = ClusterServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiA, client).withTls(false), client);
      KaonProcess.awaitMembersUp(clusterA, bearer, 3, WAIT);
      JobServiceClient jobsA = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiA, client).withTls(false), client);
      KaonProcess.submit(jobsA, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(3)
                  .setEpochs(2).setCheckpointEverySteps(50));

      // Mid-epoch (a checkpoint at step 150 or later); the API names the coordinator's node.
      Job training = KaonProcess.awaitJob(jobsA, bearer, jobId,
          j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 150, "checkpoint at step 150 or later", WAIT);
      KaonProcess host = KaonProcess.byAddress(Map.of(seedPort, a, portB, b, portC, c), training.getCoordinatorNode());
      long generationAtKill = training.getGeneration();
      // Watch through a gateway that survives.
      int watchPort = host == b ? apiA : apiB;
      JobServiceClient jobs = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", watchPort, client).withTls(false), client);
      long killedAt = System.nanoTime();
      host.kill();

      // The recovered coordinator finds its surviving workers holding the state: no checkpoint.
      List<KaonProcess> survivors = nodes.stream().filter(p -> p != host).toList();
      Job reformed = KaonProcess.awaitJob(jobs, bearer, jobId, j -> resumedFromMemory(j, generationAtKill) != null,
          "generation after " + generationAtKill + " resumed from the workers' memory", WAIT);
      double seconds = (System.nanoTime() - killedAt) / 1e9;
      Generation resumed = resumedFromMemory(reformed, generationAtKill);
      // The coordinator runs on a survivor now.
      assertTrue(survivors.contains(KaonProcess.byAddress(Map.of(seedPort, a, portB, b, portC, c), reformed.getCoordinatorNode())),
          reformed.getCoordinatorNode());
      List<JobEvent> events = KaonProcess.watch(jobs, bearer, jobId, client).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, 2);
      double accuracy = last.getStatus().getTestAccuracy();
      System.out.printf("coordinator's node killed: job re-formed on %s ranks after %.1f s (from step %s); accuracy %.4f vs fault-free %.4f%n",
          resumed.getWorldSize(), seconds, resumed.getResumeStep(), accuracy, faultFree);
      assertTrue(Math.abs(accuracy - faultFree) <= 0.015, "accuracy " + accuracy + " vs fault-free " + faultFree);
      for (KaonProcess p : survivors) {
        p.stop();
      }
    } finally {
      client.terminate();
    }
  }

  /** The first generation after {@code generation} whose state came from a worker's memory, or null. */
  private static Generation resumedFromMemory(Job job, long generation) {
    return job.getGenerationsList().stream()
        .filter(g -> g.getGeneration() > generation && g.getStateSource().startsWith("memory:"))
        .findFirst().orElse(null);
  }
}
