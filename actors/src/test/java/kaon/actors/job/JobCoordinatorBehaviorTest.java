package kaon.actors.job;

import static kaon.actors.job.CoordinatorFixture.WAIT;
import static kaon.actors.job.CoordinatorFixture.epoch;
import static kaon.actors.job.CoordinatorFixture.next;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The coordinator alone: an in-memory journal, probes for its workers, a census and a journal
 * that the test controls. Each test is one rule of how a job is run; none trains or needs
 * Cassandra, and together they take seconds.
 */
class JobCoordinatorBehaviorTest {

  private static final ActorTestKit testKit = CoordinatorFixture.testKit();
  private static final AtomicInteger jobs = new AtomicInteger();
  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 3, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 0, "", 10);
  private final TestProbe<RingMessage> peer = testKit.createTestProbe();

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private static CoordinatorFixture job(String settings) {
    return new CoordinatorFixture(testKit, "job-" + jobs.incrementAndGet(), CoordinatorFixture.settings(settings));
  }

  /** A job submitted with {@link #SPEC} whose two ranks trained generation 1 to its Begin. */
  private CoordinatorFixture training() {
    return training("");
  }

  private CoordinatorFixture training(String settings) {
    CoordinatorFixture job = job(settings);
    job.owning.addAll(List.of(0, 1));
    job.submit(SPEC);
    job.allReady(1, List.of(0, 1), peer);
    return job;
  }

  @Test
  void aSubmissionRecordsTheJobAndItsFirstGenerationThenPreparesEveryRank() {
    CoordinatorFixture job = job("");
    var result = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(SPEC, replyTo));
    assertEquals(JobStatus.Phase.STARTING, result.replyOfType(OwnerReply.Accepted.class).status().phase());
    JobEvent.GenerationStarted first = (JobEvent.GenerationStarted) result.events().get(1);
    assertEquals(new JobEvent.GenerationStarted(1, 2, 0, "job submitted", StateSource.INIT, List.of(0, 1), first.atMillis()), first);
    for (int rank = 0; rank < 2; rank++) {
      DeviceWorker.Prepare prepare = next(job.member(rank), DeviceWorker.Prepare.class);
      assertEquals(1, prepare.generation());
      assertEquals(rank, prepare.rank());
      assertEquals(job.reports.getRef(), prepare.coordinator(), "workers report to the host's adapter");
    }
  }

  @Test
  void aJobSaysWhenItWasSubmittedStartedAndEnded() {
    CoordinatorFixture job = job("");
    var submitted = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(SPEC, replyTo));
    long at = ((JobEvent.JobSubmitted) submitted.events().get(0)).atMillis();
    JobStatus starting = submitted.replyOfType(OwnerReply.Accepted.class).status();
    assertEquals(List.of(at, at, 0L), List.of(starting.createdAtMillis(), starting.startedAtMillis(), starting.endedAtMillis()));
    var cancelled = job.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new);
    long endedAt = ((JobEvent.JobCancelled) cancelled.events().get(0)).atMillis();
    assertTrue(endedAt >= at, endedAt + " < " + at);
    JobStatus ended = cancelled.replyOfType(OwnerReply.Accepted.class).status();
    assertEquals(List.of(at, at, endedAt), List.of(ended.createdAtMillis(), ended.startedAtMillis(), ended.endedAtMillis()));
  }

  @Test
  void theRingBeginsOnlyOnceEveryRankIsReady() {
    CoordinatorFixture job = job("");
    job.submit(SPEC);
    next(job.member(0), DeviceWorker.Prepare.class);
    next(job.member(1), DeviceWorker.Prepare.class);
    job.report(new WorkerReport.Ready(1, 0, peer.getRef(), "cpu:0", false));
    job.member(0).expectNoMessage(Duration.ofMillis(200));
    job.report(new WorkerReport.Ready(1, 1, peer.getRef(), "cpu:1", false));
    DeviceWorker.Begin begin = next(job.member(1), DeviceWorker.Begin.class);
    assertEquals(2, begin.ring().size());
    assertEquals(-1, begin.syncSource(), "no rank needs the state");
  }

  @Test
  void whileAGenerationTrainsTheWorkerTheNextWouldAddStandsByWhereADeviceIsFree() {
    CoordinatorFixture job = job("");
    job.owning.addAll(List.of(0, 1));
    job.freeDevices = 1;
    job.submit(SPEC);
    job.member(2).expectNoMessage(Duration.ofMillis(200));
    job.allReady(1, List.of(0, 1), peer);
    // Started now, its shard is placed while the cluster is whole; the nodes warm the task.
    DeviceWorker.AskState spare = next(job.member(2), DeviceWorker.AskState.class);
    assertEquals(1, spare.generation());
    spare.replyTo().tell(new DeviceWorker.HeldState(WorkerEntity.entityId(job.jobId, 2), -1, 0));
    assertEquals(List.of(SPEC.task()), job.warmed);
  }

  @Test
  void noWorkerStandsByWhenNoDeviceIsFree() {
    CoordinatorFixture job = training();
    job.member(2).expectNoMessage(Duration.ofMillis(300));
    assertEquals(List.of(SPEC.task()), job.warmed, "the nodes decide whether to warm the task");
  }

  @Test
  void anEpochIsRecordedOnceEveryRankReportedItAndOnlyThenAcknowledged() {
    CoordinatorFixture job = training();
    job.report(epoch(1, 0, 0, 0));
    job.member(0).expectNoMessage(Duration.ofMillis(200));
    job.report(epoch(1, 1, 0, 0));
    JobEvent.EpochCompleted recorded = job.persisted(JobEvent.EpochCompleted.class);
    assertEquals(1, recorded.metrics().epoch());
    assertEquals(0.81, recorded.metrics().testAccuracy(), 1e-9);
    assertEquals(new DeviceWorker.Ack(1, 0), next(job.member(0), DeviceWorker.Ack.class));
    assertEquals(new DeviceWorker.Ack(1, 0), next(job.member(1), DeviceWorker.Ack.class));
  }

  @Test
  void aReportSentAgainAfterItsEpochWasRecordedIsAcknowledgedAtOnce() {
    CoordinatorFixture job = training();
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persisted(JobEvent.EpochCompleted.class);
    next(job.member(1), DeviceWorker.Ack.class);
    job.report(epoch(1, 1, 0, 0));
    assertEquals(new DeviceWorker.Ack(1, 0), next(job.member(1), DeviceWorker.Ack.class));
    job.persistsNothingFor(Duration.ofMillis(200));
  }

  @Test
  void reportsOfAnotherGenerationAreIgnored() {
    CoordinatorFixture job = training();
    job.report(epoch(7, 0, 0, 0));
    job.report(epoch(7, 1, 0, 0));
    job.persistsNothingFor(Duration.ofMillis(300));
  }

  @Test
  void whileTheJournalIsUnreachableResultsWaitAndTheHealthSaysWhy() {
    CoordinatorFixture job = training();
    job.journalUp = false;
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.host.awaitAssert(WAIT, () -> {
      assertTrue(job.status().health().startsWith("journal unavailable since"), job.status().health());
      return null;
    });
    job.persistsNothingFor(Duration.ofMillis(200));
    job.journalUp = true;
    job.persisted(JobEvent.EpochCompleted.class);
    job.host.awaitAssert(WAIT, () -> {
      assertEquals("", job.status().health());
      return null;
    });
  }

  @Test
  void nothingIsWrittenPastAnEventTheJournalLost() {
    CoordinatorFixture job = training();
    job.durable = false; // Cassandra came back without the last event it had acknowledged
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persistsNothingFor(Duration.ofMillis(500));
    job.member(0).expectNoMessage(Duration.ofMillis(100)); // no ack: the workers keep their reports
  }

  @Test
  void ownerCommandsAreRefusedWhileTheJournalIsUnreachable() {
    CoordinatorFixture job = training();
    job.journalUp = false;
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.host.awaitAssert(WAIT, () -> {
      OwnerReply reply = job.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new).reply();
      assertEquals(OwnerReply.Refusal.UNAVAILABLE, ((OwnerReply.Refused) reply).refusal());
      return null;
    });
  }

  @Test
  void aSubmissionWaitsForAStaleLeaseToBeConfirmedRatherThanBeRefused() {
    CoordinatorFixture job = job("");
    job.leaseStale = true; // a renewal was slow: the lease is ours, but not confirmed lately
    var result = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(SPEC, replyTo));
    assertEquals(JobStatus.Phase.STARTING, result.replyOfType(OwnerReply.Accepted.class).status().phase());
    assertEquals(1, job.leaseConfirmations.get());
  }

  @Test
  void aSubmissionIsRefusedWithTheReasonWhenTheStaleLeaseCannotBeConfirmed() {
    CoordinatorFixture job = job("");
    job.leaseStale = true;
    job.leaseProblem = new IllegalStateException("Cassandra is down");
    OwnerReply reply = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(SPEC, replyTo)).reply();
    assertEquals(OwnerReply.Refusal.UNAVAILABLE, refusal(reply));
    assertTrue(((OwnerReply.Refused) reply).message().contains("lease is not confirmed"), reply.toString());
    assertEquals(1, job.leaseConfirmations.get(), "confirmed once, then refused rather than waiting again");
  }

  @Test
  void aCancelThatFindsTheLeaseTakenIsRefusedAndTheCoordinatorStopsWriting() {
    CoordinatorFixture job = training();
    job.leaseStale = true;
    job.leaseProblem = new JobEffects.LeaseLostException("lease of job x is held by another coordinator");
    OwnerReply reply = job.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new).reply();
    assertEquals(OwnerReply.Refusal.UNAVAILABLE, refusal(reply));
    assertTrue(((OwnerReply.Refused) reply).message().contains("held by another coordinator"), reply.toString());
    assertTrue(job.kit.getState() instanceof JobState.Active, "nothing was written: " + job.kit.getState());
  }

  @Test
  void oldCheckpointsAreDeletedByTheirKeysAndTheStoreIsListedOncePerGeneration() {
    CoordinatorFixture job = training();
    for (int k = 1; k <= 6; k++) {
      job.report(new WorkerReport.CheckpointWritten(1, 0, k, new CheckpointInfo("step-" + 10 * k, 10L * k, 0, 100, "aa")));
    }
    job.host.awaitAssert(WAIT, () -> {
      // keep-last 3: the first commit with three kept lists the store (orphans of earlier
      // generations), each later one deletes the one that fell out, by its key.
      assertEquals(List.of(10L), job.sweeps);
      assertEquals(List.of(List.of("step-10"), List.of("step-20"), List.of("step-30")), job.deletions);
      return null;
    });
  }

  @Test
  void theStatusShowsRankZerosNewestProgressUntilTheNextGenerationForms() {
    CoordinatorFixture job = training();
    assertEquals(null, job.status().progress(), "nothing said yet");
    job.report(new WorkerReport.StepProgress(1, 0, 120, 468, 0.41));
    job.report(new WorkerReport.StepProgress(1, 0, 180, 468, 0.39));
    assertEquals(new JobProgress(1, 180, 468, 0.39), job.status().progress());
    // Progress is not an event: the journal does not grow with it.
    job.persistsNothingFor(Duration.ofMillis(100));
    job.owning.remove(1);
    job.freeDevices = 1;
    job.report(new WorkerReport.Failed(1, 1, "all-reduce missed its deadline", true));
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 180, 4096));
    assertEquals(2, job.persisted(JobEvent.GenerationStarted.class).generation());
    assertEquals(null, job.status().progress(), "generation 1's progress is not generation 2's");
  }

  @Test
  void aLostRankIsReplacedAndTheSurvivorsStateIsSentToItsReplacement() {
    CoordinatorFixture job = training();
    job.owning.remove(1);
    job.freeDevices = 1;
    job.report(new WorkerReport.Failed(1, 1, "all-reduce missed its deadline", true));
    // Every member is stopped, keeping its device and state, and asked what it holds.
    assertTrue(next(job.member(0), DeviceWorker.Stop.class).keepDevice());
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 300, 4096));
    // Member 1 is gone with its node: it does not answer.
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(new JobEvent.GenerationStarted(2, 2, 300, "rank 1 failed: all-reduce missed its deadline",
        new StateSource.Memory(WorkerEntity.entityId(job.jobId, 0)), List.of(0, 2), second.atMillis()), second);
    DeviceWorker.Prepare survivor = next(job.member(0), DeviceWorker.Prepare.class);
    assertTrue(survivor.fromMembers());
    assertEquals("", survivor.resumeFrom(), "nothing is read from the checkpoint store");
    assertEquals(1, next(job.member(2), DeviceWorker.Prepare.class).rank());
    // The member left out gives its device back.
    job.member(1).fishForMessage(WAIT, "a Stop that gives the device back", m ->
        m instanceof DeviceWorker.Stop stop && !stop.keepDevice()
            ? org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.complete()
            : org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore());
  }

  @Test
  void aNodeSeenToEndReformsTheJobAtOnceWithoutWaitingForItsRanksOrItsDevices() {
    // Were the survey to wait for the lost member's answer, nothing would form within the test.
    CoordinatorFixture job = training("state-answer-timeout = 1 h");
    NodeLiveness.Endpoint a = new NodeLiveness.Endpoint("pekko://kaon@10.0.0.1:2552", "10.0.0.1", 7001, 11);
    NodeLiveness.Endpoint b = new NodeLiveness.Endpoint("pekko://kaon@10.0.0.2:2552", "10.0.0.2", 7001, 22);
    job.report(new WorkerReport.Placed(1, 0, a.node(), "cpu:0", "artery", "", a));
    job.report(new WorkerReport.Placed(1, 1, b.node(), "cpu:0", "artery", "", b));
    assertEquals(java.util.Set.of(a.node(), b.node()), job.watched.keySet(), "the nodes of its ranks are watched");
    job.owning.remove(1);
    job.freeDevices = 1;
    job.watched.get(b.node()).tell(new NodeLiveness.NodeGone(b, "closed its connection"));
    assertTrue(next(job.member(0), DeviceWorker.Stop.class).keepDevice());
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 300, 4096));
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(new JobEvent.GenerationStarted(2, 2, 300,
        "rank 1 failed: its node pekko://kaon@10.0.0.2:2552 closed its connection (its process is gone)",
        new StateSource.Memory(WorkerEntity.entityId(job.jobId, 0)), List.of(0, 2), second.atMillis()), second);
    assertEquals(java.util.Set.of(b.node()), job.censusSkipped.get(job.censusSkipped.size() - 1),
        "the census counts the lost node without asking it");
    // The lost member was stopped but never asked what it holds.
    job.member(1).fishForMessage(WAIT, "a Stop that gives the device back", m -> {
      assertFalse(m instanceof DeviceWorker.AskState, "the lost member was asked for its state");
      return m instanceof DeviceWorker.Stop stop && !stop.keepDevice()
          ? org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.complete()
          : org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore();
    });
  }

  @Test
  void aHungMemberIsWaitedForOnlyAFewTimesAsLongAsTheFirstAnswerTookAndAnAnswerProvesADevice() {
    // Were the survey to wait the whole timeout for the silent member, nothing would form in time.
    CoordinatorFixture job = training("state-answer-timeout = 1 h");
    // Neither member's device is in the census: member 0's agent was not heard in time, member 1's
    // node hangs. Member 0's answer says it still holds its state, so its device as well.
    job.owning.clear();
    job.freeDevices = 1;
    job.report(new WorkerReport.Failed(1, 0, "all-reduce missed its deadline: rank 1 is not responding", true));
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 300, 4096));
    next(job.member(1), DeviceWorker.AskState.class); // and never answers
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(List.of(0, 2), second.members(), "member 0 kept with its state, member 1 replaced");
    assertEquals(new StateSource.Memory(WorkerEntity.entityId(job.jobId, 0)), second.stateSource());
  }

  @Test
  void theEndOfANodeWithoutRanksOfTheGenerationChangesNothing() {
    CoordinatorFixture job = training();
    NodeLiveness.Endpoint a = new NodeLiveness.Endpoint("pekko://kaon@10.0.0.1:2552", "10.0.0.1", 7001, 11);
    NodeLiveness.Endpoint c = new NodeLiveness.Endpoint("pekko://kaon@10.0.0.3:2552", "10.0.0.3", 7001, 33);
    job.report(new WorkerReport.Placed(1, 0, a.node(), "cpu:0", "artery", "", a));
    job.report(new WorkerReport.Placed(1, 1, a.node(), "cpu:1", "artery", "", a));
    job.watched.get(a.node()).tell(new NodeLiveness.NodeGone(c, "closed its connection"));
    job.member(0).expectNoMessage(Duration.ofMillis(300));
  }

  @Test
  void withoutStateInMemoryTheNewestReadableCheckpointIsUsedSkippingDamagedOnes() {
    CoordinatorFixture job = training();
    job.report(new WorkerReport.CheckpointWritten(1, 0, 0, new CheckpointInfo("step-10-a", 10, 0, 100, "aa")));
    job.persisted(JobEvent.CheckpointCommitted.class);
    job.report(new WorkerReport.CheckpointWritten(1, 0, 1, new CheckpointInfo("step-20-b", 20, 0, 100, "bb")));
    job.persisted(JobEvent.CheckpointCommitted.class);
    job.damagedCheckpoints.add("step-20-b");
    job.report(new WorkerReport.Failed(1, 0, "device lost", true));
    for (int member = 0; member < 2; member++) {
      next(job.member(member), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w", -1, 0));
    }
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(new StateSource.Checkpoint("step-10-a"), second.stateSource());
    assertEquals(10, second.resumeStep());
    assertTrue(second.reason().contains("skipped damaged checkpoints: checkpoint step-20-b is damaged"), second.reason());
    assertEquals("step-10-a", next(job.member(0), DeviceWorker.Prepare.class).resumeFrom());
  }

  @Test
  void anEpochWhoseResultWasLostWithARankIsTrainedAgainFromACheckpointBeforeItsEnd() {
    CoordinatorFixture job = training();
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persisted(JobEvent.EpochCompleted.class); // 10 steps an epoch
    job.report(new WorkerReport.CheckpointWritten(1, 0, 1, new CheckpointInfo("step-20-b", 20, 1, 100, "bb")));
    job.persisted(JobEvent.CheckpointCommitted.class);
    // Epoch 2 ends at step 20: rank 1 reports it, rank 0 is lost before its report arrives.
    job.report(epoch(1, 1, 1, 1));
    job.report(new WorkerReport.Failed(1, 0, "its node closed its connection", true));
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w", -1, 0));
    next(job.member(1), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w", 24, 100));
    // Rank 1's memory is past that end; resuming from it would leave epoch 2 without a result.
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(new StateSource.Checkpoint("step-20-b"), second.stateSource());
    assertEquals(20, second.resumeStep());
    assertTrue(second.reason().contains("the end of an epoch whose result was lost"), second.reason());
  }

  @Test
  void belowItsMinimumTheJobWaitsForDevicesAndSaysSo() {
    CoordinatorFixture job = job("");
    job.submit(SPEC.withBounds(2, 3));
    job.report(new WorkerReport.Failed(1, 1, "no free device", true, true));
    job.host.awaitAssert(WAIT, () -> {
      assertEquals("waiting for devices: 0 available, needs at least 2", job.status().health());
      return null;
    });
    job.owning.addAll(List.of(0, 1));
    // Asked again (the survey repeats) until devices are there.
    JobEvent.GenerationStarted second = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(List.of(0, 1), second.members());
    job.host.awaitAssert(WAIT, () -> {
      assertEquals("", job.status().health());
      return null;
    });
  }

  @Test
  void aFailureThatCannotBeRetriedFailsTheJobStopsItsWorkersAndLeavesMemory() {
    CoordinatorFixture job = training();
    job.report(new WorkerReport.Failed(1, 0, "unknown task 'x'", false));
    JobEvent.JobFailed failed = job.persisted(JobEvent.JobFailed.class);
    assertEquals("rank 0 failed: unknown task 'x'", failed.reason());
    assertTrue(failed.atMillis() > 0, "when it failed is recorded");
    assertFalse(next(job.member(1), DeviceWorker.Stop.class).keepDevice());
    job.host.awaitAssert(WAIT, () -> {
      assertEquals(1, job.passivations.get());
      return null;
    });
    assertEquals(JobStatus.Phase.FAILED, job.status().phase());
  }

  @Test
  void identicalDigestsFromEveryRankSucceedTheJob() {
    CoordinatorFixture job = training();
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persisted(JobEvent.EpochCompleted.class);
    job.report(new WorkerReport.Finished(1, 0, 1, "ab"));
    job.report(new WorkerReport.Finished(1, 1, 1, "ab"));
    assertEquals("ab", job.persisted(JobEvent.JobSucceeded.class).digest());
    assertEquals(JobStatus.Phase.SUCCEEDED, job.status().phase());
  }

  @Test
  void refusalsSayWhichCaseTheyAre() {
    CoordinatorFixture unknown = job("");
    assertEquals(OwnerReply.Refusal.NOT_FOUND, refusal(unknown.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new).reply()));
    // Asked about a job that does not exist, the entity leaves; a submission meanwhile is told to retry.
    assertEquals(OwnerReply.Refusal.UNAVAILABLE, refusal(unknown.kit.<OwnerReply>runCommand(
        replyTo -> new JobCoordinator.Submit(SPEC, replyTo)).reply()));
    CoordinatorFixture job = job("");
    job.submit(SPEC);
    OwnerReply.Refused invalid = (OwnerReply.Refused) job.kit.<OwnerReply>runCommand(
        replyTo -> new JobCoordinator.Scale(3, 2, replyTo)).reply();
    assertEquals(OwnerReply.Refusal.INVALID_ARGUMENT, invalid.refusal());
    assertTrue(invalid.message().startsWith("min_workers:"), invalid.message());
    assertEquals(OwnerReply.Refusal.CONFLICT, refusal(job.kit.<OwnerReply>runCommand(
        replyTo -> new JobCoordinator.Submit(SPEC.withBounds(1, 2), replyTo)).reply()));
    job.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new);
    assertEquals(OwnerReply.Refusal.ENDED, refusal(job.kit.<OwnerReply>runCommand(JobCoordinator.Cancel::new).reply()));
  }

  @Test
  void theSameSubmissionAgainIsAnsweredAsTheFirstTime() {
    CoordinatorFixture job = job("");
    job.submit(SPEC);
    var again = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(SPEC, replyTo));
    assertTrue(again.reply() instanceof OwnerReply.Accepted);
    assertTrue(again.events().isEmpty());
  }

  @Test
  void scalingBelowTheCurrentSizeFormsASmallerGeneration() {
    CoordinatorFixture job = training();
    var result = job.kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Scale(1, 1, replyTo));
    assertEquals(new JobEvent.JobScaled(1, 1), result.events().get(0));
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 40, 64));
    next(job.member(1), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w1", 40, 64));
    JobEvent.GenerationStarted smaller = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals(List.of(0), smaller.members());
    assertEquals("scaled to 1..1 workers", smaller.reason());
  }

  @Test
  void aJobBelowItsMaximumGrowsWhenACensusShowsFreeDevices() {
    CoordinatorFixture job = job("grow-look-interval = 100 ms");
    job.owning.addAll(List.of(0, 1));
    job.submit(SPEC);
    job.allReady(1, List.of(0, 1), peer);
    job.freeDevices = 1;
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 30, 64));
    next(job.member(1), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w1", 30, 64));
    JobEvent.GenerationStarted grown = job.persisted(JobEvent.GenerationStarted.class);
    assertEquals("growing from 2 to 3 ranks: devices free", grown.reason());
    assertEquals(List.of(0, 1, 2), grown.members());
  }

  @Test
  void afterRecoveryRanksThatStillTrainCarryOnWithoutANewGeneration() {
    CoordinatorFixture job = training();
    job.kit.restart();
    for (int rank = 0; rank < 2; rank++) {
      DeviceWorker.Reattach reattach = next(job.member(rank), DeviceWorker.Reattach.class);
      job.report(new WorkerReport.Reattached(reattach.generation(), rank));
    }
    job.persistsNothingFor(Duration.ofMillis(1500));
    assertEquals(1, job.status().generation());
  }

  @Test
  void afterRecoveryARankThatNoLongerTrainsLeadsToANewGeneration() {
    CoordinatorFixture job = training();
    job.kit.restart();
    next(job.member(0), DeviceWorker.Reattach.class);
    job.report(new WorkerReport.NotRunning(1, 1));
    next(job.member(0), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w0", 20, 64));
    next(job.member(1), DeviceWorker.AskState.class).replyTo().tell(new DeviceWorker.HeldState("w1", 20, 64));
    assertEquals("rank 1 no longer trains generation 1", job.persisted(JobEvent.GenerationStarted.class).reason());
  }

  @Test
  void aCoordinatorRecoversFromItsNewestSnapshotAndTheEventsAfterItToTheSameJob() {
    // Submitted, generation 1, epoch 1 and a checkpoint: a snapshot after the second and the fourth.
    CoordinatorFixture job = training("snapshot-every = 2");
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persisted(JobEvent.EpochCompleted.class);
    job.report(new WorkerReport.CheckpointWritten(1, 0, 1, new CheckpointInfo("step-10", 10, 0, 100, "ab".repeat(32))));
    job.persisted(JobEvent.CheckpointCommitted.class);
    JobState before = job.kit.getState();
    var snapshots = job.kit.snapshotTestKit().orElseThrow();
    snapshots.expectNextPersistedClass("Job|" + job.jobId, JobState.Active.class);
    assertEquals(before, snapshots.expectNextPersistedClass("Job|" + job.jobId, JobState.Active.class));
    job.kit.restart();
    assertEquals(before, job.kit.getState());
    assertEquals(1, job.status().epochs().size());
  }

  @Test
  void anEndedJobIsSnapshotted() {
    CoordinatorFixture job = training();
    job.report(epoch(1, 0, 0, 0));
    job.report(epoch(1, 1, 0, 0));
    job.persisted(JobEvent.EpochCompleted.class);
    job.report(new WorkerReport.Finished(1, 0, 1, "ab"));
    job.report(new WorkerReport.Finished(1, 1, 1, "ab"));
    JobEvent.JobSucceeded succeeded = job.persisted(JobEvent.JobSucceeded.class);
    JobState.Ended ended = job.kit.snapshotTestKit().orElseThrow()
        .expectNextPersistedClass("Job|" + job.jobId, JobState.Ended.class);
    assertEquals(JobStatus.Phase.SUCCEEDED, ended.phase());
    assertEquals(succeeded.atMillis(), ended.endedAtMillis());
  }

  @Test
  void aJournalWrittenByTheEarlierVersionRecoversToTheSameJob() throws Exception {
    CoordinatorFixture job = job("");
    job.kit.initialize(JournalReplayTest.journal("memory-1").toArray());
    job.kit.restart();
    JobStatus recovered = job.status();
    assertEquals(JournalReplayTest.replay("memory-1"), withIdAndNode(recovered, "replayed", ""));
    // An ended job leaves memory once recovered.
    assertTrue(job.passivations.get() >= 1);
  }

  private static JobStatus withIdAndNode(JobStatus s, String jobId, String node) {
    return new JobStatus(jobId, s.phase(), s.spec(), s.generation(), s.epochs(), s.stepsDone(), s.stateSource(),
        s.latestCheckpoint(), s.health(), s.testAccuracy(), s.digest(), s.message(), s.worldSize(), s.minWorkers(),
        s.maxWorkers(), s.generations(), node, s.ranks(), s.progress(), s.createdAtMillis(), s.startedAtMillis(),
        s.endedAtMillis());
  }

  private static OwnerReply.Refusal refusal(OwnerReply reply) {
    assertTrue(reply instanceof OwnerReply.Refused, reply.toString());
    return ((OwnerReply.Refused) reply).refusal();
  }
}
