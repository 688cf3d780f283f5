package kaon.actors.job;

import kaon.actors.training.JobSpec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.NodeAgent;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The job entity's life: submit, finish, stop and recover from its journal, refusals. */
class JobCoordinatorTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Duration WAIT = Duration.ofSeconds(60);
  /** Job ids are unique per run: the journal is a real, shared Cassandra. */
  private static final String RUN = java.util.UUID.randomUUID().toString().substring(0, 8) + "-";
  private static ActorRef<NodeAgent.Command> nodeAgent;
  private static TestNode node;

  @BeforeAll
  static void startNode() {
    node = new TestNode(testKit, 2);
    nodeAgent = node.nodeAgent;
  }

  /** Workers give their devices back asynchronously; the next test must find them free. */
  @AfterEach
  void devicesAreFreeAfterEachTest() {
    awaitDevicesFree();
  }

  private static void awaitDevicesFree() {
    TestProbe<NodeAgent.Devices> probe = testKit.createTestProbe();
    probe.awaitAssert(WAIT, () -> {
      nodeAgent.tell(new NodeAgent.ListDevices(probe.getRef()));
      NodeAgent.Devices devices = probe.receiveMessage();
      devices.devices().forEach(d -> assertEquals("", d.owner(), d.slot().id() + " still owned"));
      return null;
    });
  }

  @AfterAll
  static void stopNode() {
    testKit.shutdownTestKit();
  }

  private static JobSpec checkpointed(long maxSteps) {
    return new JobSpec("fashion-mnist-mlp", 2, 4, 128, OptimizerSpec.sgd(0.1f, 0.9f), 11, maxSteps, "", 100);
  }

  /** A coordinator for job {@code jobId} on the test node, recovering whatever its journal holds. */
  private static ActorRef<JobCoordinator.Command> spawnJob(String jobId) {
    return testKit.spawn(JobEntity.create(jobId, null, node.store, TestNode.JOB_SETTINGS));
  }

  /** Submits {@code spec} to {@code job} and watches it from then on. */
  private static TestProbe<JobUpdate> submitAndWatch(ActorRef<JobCoordinator.Command> job, JobSpec spec) {
    submit(job, spec);
    return watch(job);
  }

  private static TestProbe<JobUpdate> watch(ActorRef<JobCoordinator.Command> job) {
    TestProbe<JobUpdate> watcher = testKit.createTestProbe();
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    return watcher;
  }

  /** Runs {@code spec} under a new job id to the end and returns its final status. */
  private static JobStatus runToEnd(String jobId, JobSpec spec) {
    ActorRef<JobCoordinator.Command> job = spawnJob(jobId);
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec);
    return DataParallelEquivalenceTest.awaitEnd(watcher);
  }

  /** Waits until a status shows a committed checkpoint. */
  /**
   * Worker {@code member} of {@code jobId} stops and gives up its device and its state, as if its
   * thread and replica were gone; nobody tells the job.
   */
  private static void loseWorker(String jobId, int member, long generation, String reason) {
    ClusterSharding.get(testKit.system())
        .entityRefFor(WorkerEntity.ENTITY_KEY, WorkerEntity.entityId(jobId, member))
        .tell(new DeviceWorker.Stop(generation, reason, false));
  }

  private static JobStatus awaitCheckpoint(TestProbe<JobUpdate> watcher) {
    while (true) {
      if (watcher.receiveMessage(WAIT) instanceof JobUpdate.StatusChanged changed
          && changed.status().latestCheckpoint() != null) {
        return changed.status();
      }
    }
  }

  @Test
  void resumesBitIdenticallyFromItsCheckpointWhenItsRanksAreGone() {
    JobSpec spec = checkpointed(1200);
    JobStatus reference = runToEnd(RUN + "resume-reference", spec);
    assertEquals(JobStatus.Phase.SUCCEEDED, reference.phase(), reference.message());
    awaitDevicesFree();

    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "resume-1");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec);
    JobStatus checkpointed = awaitCheckpoint(watcher);
    // The coordinator and every rank die; only the journal and the checkpoints remain.
    testKit.stop(job);
    for (int member = 0; member < 2; member++) {
      loseWorker(RUN + "resume-1", member, checkpointed.generation(), "test: rank lost");
    }
    awaitDevicesFree();

    TestProbe<JobUpdate> again = watch(spawnJob(RUN + "resume-1"));
    JobStatus end = DataParallelEquivalenceTest.awaitEnd(again);
    assertEquals(JobStatus.Phase.SUCCEEDED, end.phase(), end.message());
    assertEquals(2, end.generation());
    assertTrue(end.stateSource().startsWith("checkpoint:step-"), end.stateSource());
    assertEquals(1200, end.stepsDone());
    assertEquals(reference.digest(), end.digest(), "resumed parameters differ from an uninterrupted run");
  }

  @Test
  void aLostRankIsReplacedFromTheSurvivorsMemoryWithoutReadingACheckpoint() {
    JobSpec spec = checkpointed(1200);
    JobStatus reference = runToEnd(RUN + "memory-reference", spec);
    assertEquals(JobStatus.Phase.SUCCEEDED, reference.phase(), reference.message());
    awaitDevicesFree();

    String jobId = RUN + "memory-1";
    ActorRef<JobCoordinator.Command> job = spawnJob(jobId);
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec);
    JobStatus running = awaitCheckpoint(watcher);
    // Worker 1 is lost: its thread, replica and device are gone, and nobody tells the job. Rank
    // 0's ring breaks at its deadline; it must carry on from what it holds in memory, and the
    // worker that replaces rank 1 gets the state from it.
    loseWorker(jobId, 1, running.generation(), "test: worker lost");
    JobStatus end = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.SUCCEEDED, end.phase(), end.message());
    assertEquals(2, end.generation());
    assertEquals("memory:" + WorkerEntity.entityId(jobId, 0), end.stateSource());
    assertEquals(1200, end.stepsDone());
    // Same world size, same state: the same parameters as a run that lost nothing.
    assertEquals(reference.digest(), end.digest(), "parameters differ from an uninterrupted run");
    assertEquals(3, end.epochs().size());
    end.epochs().forEach(e -> assertTrue(e.eachSampleOnce(), "epoch " + e.epoch() + " used each sample once"));
  }

  @Test
  void aJobBelowItsMaximumGrowsOntoDevicesAnotherJobGaveBack() {
    // Job A holds one of the node's two devices for a while.
    ActorRef<JobCoordinator.Command> a = spawnJob(RUN + "holder");
    TestProbe<JobUpdate> aWatcher = submitAndWatch(a, spec("fashion-mnist-mlp", 1, 150));
    while (!(aWatcher.receiveMessage(WAIT) instanceof JobUpdate.Progress)) {
      // until A trains
    }
    // Job B may have 1..2 workers: it starts with the one device left, as the API starts a job
    // with the free devices it counts. (Started with 2, its second rank would wait for A's device
    // to come back, up to 10 s, and train from the start with both.) Its 5 epochs (about 2,300
    // steps) outlast A's end and B's next look a second later several times over: with 2 epochs
    // a warm JVM finished B before that look now and then.
    ActorRef<JobCoordinator.Command> b = spawnJob(RUN + "grower");
    JobSpec fiveEpochs = new JobSpec("fashion-mnist-mlp", 1, 5, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 0, "", 0);
    TestProbe<JobUpdate> bWatcher = submitAndWatch(b, fiveEpochs.withBounds(1, 2));
    assertEquals(JobStatus.Phase.SUCCEEDED, DataParallelEquivalenceTest.awaitEnd(aWatcher).phase());
    // A gave its device back; B finds it at its next look and grows.
    JobStatus end = DataParallelEquivalenceTest.awaitEnd(bWatcher);
    assertEquals(JobStatus.Phase.SUCCEEDED, end.phase(), end.message());
    assertEquals(2, end.worldSize(), end.generations().toString());
    GenerationInfo grown = end.generations().get(end.generations().size() - 1);
    assertEquals("growing from 1 to 2 ranks: devices free", grown.reason());
    assertTrue(grown.stateSource().startsWith("memory:"), grown.stateSource());
    assertEquals(5, end.epochs().size());
    end.epochs().forEach(e -> assertTrue(e.eachSampleOnce(), "epoch " + e.epoch() + " used each sample once"));
  }

  @Test
  void aJobWhoseLossIsNoLongerFiniteFailsSayingSoInsteadOfSucceeding() {
    // A learning rate of 1e30 sends the parameters to infinity in one step; the next step's sums
    // are not finite. Each generation gives that state up and starts again from the initial
    // parameters (there is no checkpoint), diverges again, and the job fails.
    JobStatus end = runUntilItGivesUp("diverging", 1e30f);
    assertTrue(end.message().contains("summed to a non-finite value"), end.message());
  }

  @Test
  void aJobWhoseGradientSpikesFailsSayingSoInsteadOfSucceedingWithADeadModel() {
    // A learning rate of 1e3 leaves finite but huge parameters after one step; the next step's
    // summed gradient peaks far above the first one's while staying finite, which the
    // non-finite check alone would let through. Each generation starts again from the initial
    // parameters (there is no checkpoint), spikes at the same step, and the job fails.
    JobStatus end = runUntilItGivesUp("spiking", 1e3f);
    assertTrue(end.message().contains("times its typical"), end.message());
  }

  /**
   * Runs a 1-worker job without checkpoints at {@code learningRate} to its end, which must be a
   * failure for generations that made no progress.
   */
  private static JobStatus runUntilItGivesUp(String name, float learningRate) {
    JobSpec spec = new JobSpec("fashion-mnist-mlp", 1, 1, 128, OptimizerSpec.sgd(learningRate, 0f), 7, 20, "", 0);
    JobStatus end = runToEnd(RUN + name, spec);
    assertEquals(JobStatus.Phase.FAILED, end.phase());
    assertTrue(end.message().contains("generations in a row made no progress"), end.message());
    return end;
  }

  @Test
  void carriesOnWithoutANewGenerationWhenItsRanksStillTrain() {
    JobSpec spec = checkpointed(1100);
    JobStatus reference = runToEnd(RUN + "reattach-reference", spec);
    awaitDevicesFree();

    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "reattach-1");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec);
    awaitCheckpoint(watcher);
    testKit.stop(job);
    TestProbe<JobUpdate> again = watch(spawnJob(RUN + "reattach-1"));
    JobStatus end = DataParallelEquivalenceTest.awaitEnd(again);
    assertEquals(JobStatus.Phase.SUCCEEDED, end.phase(), end.message());
    assertEquals(1, end.generation(), "the ranks kept training; no new generation was needed");
    assertEquals(reference.digest(), end.digest());
    // Epoch reports sent while no coordinator listened were resent, not lost.
    assertEquals(3, end.epochs().size());
  }

  private static JobSpec spec(String task, int workers, long maxSteps) {
    return new JobSpec(task, workers, 2, 128, OptimizerSpec.sgd(0.1f, 0f), 7, maxSteps, "", 0);
  }

  private static JobStatus submit(ActorRef<JobCoordinator.Command> job, JobSpec spec) {
    TestProbe<OwnerReply> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(spec, reply.getRef()));
    OwnerReply answer = reply.receiveMessage(WAIT);
    assertTrue(answer instanceof OwnerReply.Accepted, () -> "submit refused: " + answer);
    return ((OwnerReply.Accepted) answer).status();
  }

  private static JobStatus status(ActorRef<JobCoordinator.Command> job) {
    TestProbe<JobStatus> probe = testKit.createTestProbe();
    job.tell(new JobCoordinator.GetStatus(probe.getRef()));
    return probe.receiveMessage(WAIT);
  }

  @Test
  void finishedJobRecoversFromItsJournalAfterARestart() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "recover-1");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec("fashion-mnist-mlp", 2, 700));
    JobStatus finished = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.SUCCEEDED, finished.phase(), finished.message());
    // 700 steps: one full epoch (468) and a partial second one, both reported.
    assertEquals(2, finished.epochs().size());
    assertEquals(700, finished.stepsDone());
    assertTrue(finished.testAccuracy() > 0.75, "test accuracy " + finished.testAccuracy());

    testKit.stop(job);
    ActorRef<JobCoordinator.Command> respawned = spawnJob(RUN + "recover-1");
    JobStatus recovered = status(respawned);
    // Where ranks ran is what live workers report, not part of the journal: an ended job that is
    // recovered has no ranks to place, and everything else must be as the job ended.
    assertEquals(List.of(), recovered.ranks());
    assertEquals(finished.withRanks(List.of()), recovered);
  }

  @Test
  void cancellingAFinishedJobIsRefused() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "cancel-late");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec("fashion-mnist-mlp", 1, 5));
    assertEquals(JobStatus.Phase.SUCCEEDED, DataParallelEquivalenceTest.awaitEnd(watcher).phase());
    TestProbe<OwnerReply> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Cancel(reply.getRef()));
    OwnerReply.Refused refused = (OwnerReply.Refused) reply.receiveMessage(WAIT);
    assertEquals(OwnerReply.Refusal.ENDED, refused.refusal());
  }

  @Test
  void resubmittingTheSameSpecIsIdempotentButAnotherSpecIsRefused() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "idempotent");
    JobSpec spec = spec("fashion-mnist-mlp", 1, 5);
    JobStatus first = submit(job, spec);
    JobStatus second = submit(job, spec);
    assertEquals(first.jobId(), second.jobId());
    assertEquals(1, second.generation());
    TestProbe<OwnerReply> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(spec("fashion-mnist-mlp", 2, 5), reply.getRef()));
    assertEquals(OwnerReply.Refusal.CONFLICT, ((OwnerReply.Refused) reply.receiveMessage(WAIT)).refusal());
  }

  @Test
  void anEventOverOneMebibyteIsRefusedBeforeItIsPersisted() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "oversize");
    JobSpec huge = new JobSpec("fashion-mnist-mlp", 1, 1, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 5, "/tmp/" + "x".repeat(1_100_000), 0);
    TestProbe<OwnerReply> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(huge, reply.getRef()));
    OwnerReply.Refused refused = (OwnerReply.Refused) reply.receiveMessage(WAIT);
    assertEquals(OwnerReply.Refusal.INVALID_ARGUMENT, refused.refusal());
    assertTrue(refused.message().contains("too large") && refused.message().contains("1048576"), refused.message());
    // Nothing was persisted: the job does not exist, and the entity is alive to say so.
    assertEquals(JobStatus.Phase.UNKNOWN, status(job).phase());
  }

  @Test
  void anUnknownTaskFailsTheJobWithAClearReason() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "unknown-task");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec("no-such-task", 1, 5));
    JobStatus failed = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.FAILED, failed.phase());
    assertTrue(failed.message().contains("unknown task 'no-such-task'"), failed.message());
  }

  @Test
  void aJobNeedingMoreDevicesThanTheClusterHasWaitsAndSaysWhy() {
    ActorRef<JobCoordinator.Command> job = spawnJob(RUN + "too-big");
    TestProbe<JobUpdate> watcher = submitAndWatch(job, spec("fashion-mnist-mlp", 3, 5));
    // Rank 2 gets no device; the job re-forms with what there is, which is below its minimum.
    JobStatus waiting = null;
    while (waiting == null) {
      if (watcher.receiveMessage(WAIT) instanceof JobUpdate.StatusChanged changed
          && changed.status().health().contains("waiting for devices: 2 available, needs at least 3")) {
        waiting = changed.status();
      }
    }
    assertTrue(waiting.phase() == JobStatus.Phase.STARTING || waiting.phase() == JobStatus.Phase.RUNNING, waiting.toString());
    TestProbe<OwnerReply> cancelled = testKit.createTestProbe();
    job.tell(new JobCoordinator.Cancel(cancelled.getRef()));
    assertEquals(JobStatus.Phase.CANCELLED, ((OwnerReply.Accepted) cancelled.receiveMessage(WAIT)).status().phase());
  }

  @Test
  void aSubmissionIsTheSameWhateverStartSizeTheFreeDevicesGaveIt() {
    JobSpec first = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 4, 128, OptimizerSpec.sgd(0.1f, 0.9f), 11, 0, "", 100);
    JobSpec retriedWithNoDeviceFree = new JobSpec("fashion-mnist-mlp", 1, 1, 3, 4, 128, OptimizerSpec.sgd(0.1f, 0.9f), 11, 0, "", 100);
    assertTrue(OwnerCommands.sameSubmission(retriedWithNoDeviceFree, first));
    assertTrue(OwnerCommands.sameSubmission(first, first));
    JobSpec otherBounds = first.withBounds(2, 3);
    assertTrue(!OwnerCommands.sameSubmission(otherBounds, first));
    JobSpec otherEpochs = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 5, 128, OptimizerSpec.sgd(0.1f, 0.9f), 11, 0, "", 100);
    assertTrue(!OwnerCommands.sameSubmission(otherEpochs, first));
  }
}
