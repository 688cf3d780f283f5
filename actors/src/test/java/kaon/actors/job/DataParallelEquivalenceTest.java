package kaon.actors.job;

import kaon.actors.training.JobSpec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import kaon.actors.tasks.FashionMnistCnnTask;
import kaon.actors.tasks.FashionMnistMlpTask;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TrainingTask;
import kaon.protocol.NamedTensor;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The correctness anchor of data-parallel training (DESIGN §2): N ranks exchanging gradients
 * through the ring take the same steps as one rank with the same global batch.
 */
class DataParallelEquivalenceTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(3);
  private static final int STEPS = 20;
  /**
   * Float sums in another order differ in the last bits; over 20 SGD steps at lr 0.1 that stays
   * far below 1e-5 per parameter (3e-8 measured), while a lost or doubled gradient moves parameters by ~1e-2.
   */
  private static final double TOLERANCE = 1e-5;
  /**
   * The CNN's convolutions sum over every position of every image of a rank's half-batch, and
   * libtorch picks its kernels by shape: the last bits differ more (1.1e-5 measured channels-last,
   * 7.1e-5 with the NCHW layout before it), still far below a lost or doubled gradient's ~1e-2.
   */
  private static final double CNN_TOLERANCE = 5e-4;

  @TempDir static Path dir;
  private static TestNode node;

  @BeforeAll
  static void startNode() {
    node = new TestNode(testKit, 3, dir);
  }

  @AfterAll
  static void stopNode() {
    testKit.shutdownTestKit();
  }

  @Test
  void twoAndThreeRanksTakeTheSameStepsAsOne() throws Exception {
    assertSameStepsAsOne(new FashionMnistMlpTask(), TOLERANCE, 2, 3);
  }

  @Test
  void twoCnnRanksTakeTheSameStepsAsOne() throws Exception {
    // The CNN runs its layers channels-last (FashionMnistCnnTask): on half the batch as on all of it.
    assertSameStepsAsOne(new FashionMnistCnnTask(), CNN_TOLERANCE, 2);
  }

  private static void assertSameStepsAsOne(TrainingTask task, double tolerance, int... worldSizes) throws Exception {
    List<NamedTensor> one = train(task, 1);
    for (int workers : worldSizes) {
      List<NamedTensor> many = train(task, workers);
      double worst = 0;
      for (int t = 0; t < one.size(); t++) {
        float[] a = one.get(t).values();
        float[] b = many.get(t).values();
        assertEquals(one.get(t).name(), many.get(t).name());
        for (int i = 0; i < a.length; i++) {
          worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
      }
      System.out.printf("%s: %d ranks vs 1 after %d steps: max |delta| = %.3g%n", task.name(), workers, STEPS, worst);
      assertTrue(worst < tolerance, task.name() + ": " + workers + " ranks differ from 1 by " + worst);
    }
  }

  private static List<NamedTensor> train(TrainingTask task, int workers) throws Exception {
    String jobId = "equivalence-" + workers + "-" + java.util.UUID.randomUUID().toString().substring(0, 8);
    String name = "equivalence/" + jobId + ".params";
    JobSpec spec = new JobSpec(task.name(), workers, 1, 128, OptimizerSpec.sgd(0.1f, 0f), 42, STEPS, name, 0);
    var job = ClusterSharding.get(testKit.system()).entityRefFor(JobEntity.ENTITY_KEY, jobId);
    TestProbe<JobUpdate> watcher = testKit.createTestProbe();
    TestProbe<OwnerReply> submitted = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(spec, submitted.getRef()));
    assertTrue(submitted.receiveMessage(Duration.ofSeconds(30)) instanceof OwnerReply.Accepted);
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    JobStatus status = awaitEnd(watcher);
    assertEquals(JobStatus.Phase.SUCCEEDED, status.phase(), status.message());
    assertEquals(STEPS, status.stepsDone());
    try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 0)) {
      // Rank 0 wrote it under the node's model directory, in a directory it created.
      replica.loadParameters(dir.resolve(name));
      assertEquals(status.digest(), replica.digest(), "the saved model is not the one the ranks agreed on");
      // Stored before the job could succeed, under the digest the job reports.
      assertTrue(node.store.findModel(jobId, status.digest()).toCompletableFuture().get().isPresent(), "model not stored");
      return new ArrayList<>(replica.exportParameters());
    }
  }

  static JobStatus awaitEnd(TestProbe<JobUpdate> watcher) {
    while (true) {
      JobUpdate update = watcher.receiveMessage(JOB_TIMEOUT);
      if (update instanceof JobUpdate.StatusChanged changed && changed.status().phase().isTerminal()) {
        return changed.status();
      }
    }
  }
}
