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
import kaon.protocol.v1.LogLine;
import kaon.protocol.v1.StreamJobLogsRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.Test;

/**
 * Three node JVMs with one device each run a job of 2..3 workers; one worker node is SIGKILLed, or
 * hung with SIGSTOP, in the middle of an epoch. The job must notice (a missed all-reduce deadline,
 * not the cluster's downing), go on with the two survivors from its last checkpoint, and finish
 * with the accuracy of a fault-free run. A hung node that wakes up finds itself downed and leaves.
 */
class WorkerNodeLossTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void aJobLosesAWorkerNodeMidEpochAndFinishesOnTheSurvivors() throws Exception {
    loseAWorkerNode("loss", false);
  }

  @Test
  void aJobGoesOnWithoutAHungWorkerNode() throws Exception {
    loseAWorkerNode("hang", true);
  }

  private void loseAWorkerNode(String name, boolean hang) throws Exception {
    double faultFree = KaonProcess.faultFreeAccuracy(2);

    String token = UUID.randomUUID().toString();
    // The kill runs over Artery (the default), the hang over the tensor link: a link to a frozen
    // node must be noticed by the round deadline just the same.
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token, "KAON_ALLREDUCE_TRANSPORT", hang ? "link" : "artery"));
    int seedPort = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    int portC = KaonProcess.freePort();
    String jobId = name + "-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start(name + "-a", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", Integer.toString(apiPort));
        KaonProcess b = KaonProcess.start(name + "-b", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--roles", "worker");
        KaonProcess c = KaonProcess.start(name + "-c", env, "node", "--devices", "1", "--seed", "127.0.0.1:" + seedPort,
            "--port", Integer.toString(portC), "--roles", "worker")) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      String bearer = "Bearer " + token;
      KaonProcess.awaitMembersUp(cluster, bearer, 3, WAIT);
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(3)
                  .setEpochs(2).setCheckpointEverySteps(50));
      var watched = KaonProcess.watch(jobs, bearer, jobId, client);
      // kaon logs -f: the job's lines from every node, followed until the job ends.
      var followed = jobs.streamJobLogs().addHeader("authorization", bearer)
          .invoke(StreamJobLogsRequest.newBuilder().setJobId(jobId).setFollow(true).build())
          .runWith(Sink.seq(), client).toCompletableFuture();

      // Mid-epoch: a checkpoint exists and training goes on; then node C dies without a word.
      String addressC = "pekko://kaon@127.0.0.1:" + portC;
      KaonProcess.awaitDeviceOwned(cluster, bearer, addressC, jobId, WAIT);
      KaonProcess.awaitJob(jobs, bearer, jobId,
          j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 150, "checkpoint at step 150 or later", WAIT);
      long killedAt = System.nanoTime();
      if (hang) {
        c.hang();
      } else {
        c.kill();
      }

      // The two survivors go on from their memory: both are workers of the generation before (a
      // first generation that lost a placement race re-forms once), not new ones, and no
      // checkpoint is read.
      Job reformed = KaonProcess.awaitJob(jobs, bearer, jobId, j -> twoRanksFromMemory(j) != null,
          "generation of 2 ranks resumed from the workers' memory", WAIT);
      double secondsToNewGeneration = (System.nanoTime() - killedAt) / 1e9;
      Generation resumed = twoRanksFromMemory(reformed);
      Generation previous = reformed.getGenerationsList().stream()
          .filter(g -> g.getGeneration() == resumed.getGeneration() - 1).findFirst()
          .orElseThrow(() -> new AssertionError("no generation before " + resumed + ": " + reformed));
      assertEquals(3, previous.getWorldSize(), previous.toString());
      assertTrue(previous.getWorkersList().containsAll(resumed.getWorkersList()),
          resumed + " keeps the survivors of " + previous);
      if (hang) {
        // The cluster downed the silent node meanwhile; woken up, it learns so and shuts down.
        awaitGone(cluster, bearer, addressC);
        c.resume();
        assertTrue(c.awaitExit(WAIT) >= 0);
      }
      List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, 2);
      assertEquals(2, last.getStatus().getWorldSize());
      double accuracy = last.getStatus().getTestAccuracy();
      System.out.printf("worker node " + (hang ? "hung" : "killed") + ": new generation after %.1f s (from step %s); accuracy %.4f vs fault-free %.4f%n",
          secondsToNewGeneration, resumed.getResumeStep(), accuracy, faultFree);
      assertTrue(Math.abs(accuracy - faultFree) <= 0.015, "accuracy " + accuracy + " vs fault-free " + faultFree
          + "; epochs " + last.getStatus().getEpochsList() + KaonProcess.summary(name + "-a", name + "-b", name + "-c"));
      assertLogsTellTheStory(followed.get(WAIT.toMillis(), TimeUnit.MILLISECONDS), resumed, seedPort, name);
      jobs.close();
      cluster.close();
      b.stop();
      a.stop();
    } finally {
      client.terminate();
    }
  }

  /**
   * The followed log ended with the job, in time order, and told its story from more than one
   * node: the coordinator's generations, the re-formation with its reason, the job's end.
   */
  private static void assertLogsTellTheStory(List<LogLine> lines, Generation resumed, int seedPort, String name)
      throws Exception {
    String all = lines.stream().map(l -> l.getNode() + " " + l.getLevel() + " " + l.getMessage())
        .collect(java.util.stream.Collectors.joining("\n"));
    for (int i = 1; i < lines.size(); i++) {
      assertTrue(lines.get(i - 1).getAtMillis() <= lines.get(i).getAtMillis(), "out of time order:\n" + all);
    }
    assertTrue(lines.stream().anyMatch(l -> l.getMessage().contains("generation " + resumed.getGeneration())
        && l.getMessage().contains("resumes")), "the re-formation:\n" + all);
    assertTrue(lines.stream().anyMatch(l -> l.getMessage().contains("ended: SUCCEEDED")), "the end:\n" + all);
    assertTrue(lines.stream().map(LogLine::getNode).distinct().count() >= 2, "lines of several nodes:\n" + all);
    System.out.println("kaon logs of the " + name + " job (" + lines.size() + " lines):\n" + all);
  }

  /** The first generation of 2 ranks whose state came from a worker's memory, or null. */
  private static Generation twoRanksFromMemory(Job job) {
    return job.getGenerationsList().stream()
        .filter(g -> g.getWorldSize() == 2 && g.getStateSource().startsWith("memory:"))
        .findFirst().orElse(null);
  }

  /** Waits until the cluster has downed {@code node}: ListMembers no longer has it, or has it Down. */
  private static void awaitGone(ClusterServiceClient cluster, String bearer, String node) throws Exception {
    KaonProcess.awaitMembers(cluster, bearer,
        members -> members.stream().noneMatch(m -> m.getAddress().equals(node) && !m.getStatus().equals("Down")),
        "downing of " + node, WAIT);
  }

}
