package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import kaon.runtime.chaos.Observation.Baseline;
import kaon.runtime.chaos.Observation.CheckpointCommitted;
import kaon.runtime.chaos.Observation.CheckpointVerified;
import kaon.runtime.chaos.Observation.ClusterViews;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.FaultEnded;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.FaultStruck;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.JournalRead.WriterRun;
import kaon.runtime.chaos.Observation.RanksPlaced;
import kaon.runtime.chaos.Observation.RanksPlaced.Rank;
import kaon.runtime.chaos.Observation.StepsSeen;
import kaon.runtime.chaos.Verdict.FaultTiming;
import org.junit.jupiter.api.Test;

/**
 * The checker on histories written by hand: a clean run holds every invariant, and each kind of
 * violation, put into that run, is caught under the invariant it breaks and only there.
 */
class HistoryCheckerTest {

  private static final HistoryChecker CHECKER = new HistoryChecker(HistoryChecker.Rules.standard());
  private static final String J = "job-1";

  /**
   * Two epochs of 10 steps on 2 workers; node 2 is killed at step 7 and the job resumes from the
   * checkpoint at step 5 on node 3; node 3 later hangs for 2 s without the job re-forming.
   */
  private static List<Observation> clean() {
    List<Observation> h = new ArrayList<>();
    h.add(new JobSubmitted(0, J, 2, 0, 128, 2, 2, false, ""));
    h.add(new GenerationFormed(100, J, 1, 2, 0, "init", "job submitted", List.of(0, 1)));
    h.add(placed(200, 1, "n2"));
    h.add(steps(1000, 1, 3, ""));
    h.add(new CheckpointCommitted(2000, J, "c5", 5, "sha-a"));
    h.add(steps(2500, 1, 7, ""));
    h.add(new FaultStarted(3000, 1, "kill", "node 2", "SIGKILL"));
    h.add(steps(3500, 1, 7, "rank 1 unreachable"));
    h.add(new GenerationFormed(4000, J, 2, 2, 5, "checkpoint:c5", "rank 1 failed", List.of(0, 2)));
    h.add(new CheckpointVerified(4100, J, "c5", "sha-a", "sha-a"));
    h.add(placed(4200, 2, "n3"));
    h.add(steps(5000, 2, 8, ""));
    h.add(new EpochReported(6000, J, 1, 10, 1280, true, 2, 1.5, 0.70));
    h.add(new FaultStarted(7000, 2, "hang", "node 3", "SIGSTOP 2 s"));
    h.add(new FaultEnded(9000, 2));
    h.add(steps(9500, 2, 15, ""));
    h.add(new EpochReported(11000, J, 2, 20, 1280, true, 2, 1.0, 0.80));
    h.add(new JobEnded(11500, J, "SUCCEEDED", "", 20, 0.80, "d1"));
    h.add(new Baseline(12000, J, 0.805, "d1", 2));
    h.add(new JournalRead(12000, J, List.of(new WriterRun("w-a", 1, 10), new WriterRun("w-b", 11, 20)), List.of()));
    h.add(new ClusterViews(12000, 3, List.of(List.of("n1", "n2", "n3"), List.of("n3", "n1", "n2"), List.of("n1", "n2", "n3"))));
    return h;
  }

  private static StepsSeen steps(long at, long generation, long step, String health) {
    return new StepsSeen(at, J, generation, step, 10, 2, 2.0 - step / 20.0, health);
  }

  private static RanksPlaced placed(long at, long generation, String secondNode) {
    return new RanksPlaced(at, J, generation, List.of(new Rank(0, 0, "n1", "cpu:0"), new Rank(1, 1, secondNode, "cpu:0")));
  }

  private static List<Observation> replace(List<Observation> h, Predicate<Observation> which, Observation with) {
    List<Observation> changed = new ArrayList<>();
    int hits = 0;
    for (Observation o : h) {
      if (which.test(o)) {
        hits++;
        if (with != null) {
          changed.add(with);
        }
      } else {
        changed.add(o);
      }
    }
    assertEquals(1, hits, "the test meant to replace one observation");
    return changed;
  }

  private static List<Observation> plus(List<Observation> h, Observation... more) {
    List<Observation> changed = new ArrayList<>(h);
    changed.addAll(List.of(more));
    return changed;
  }

  /** The violated invariant is exactly {@code broken}, and one of its lines mentions {@code words}. */
  private static void caught(List<Observation> history, Invariant broken, String words) {
    Verdict verdict = CHECKER.check(history);
    assertFalse(verdict.held(), "a violating history passed");
    for (Verdict.Finding f : verdict.findings()) {
      assertEquals(f.invariant() != broken, f.held(), () -> f.invariant() + ": " + f.evidence());
    }
    List<String> evidence = verdict.finding(broken).evidence();
    assertTrue(evidence.stream().anyMatch(line -> line.contains(words)), () -> "'" + words + "' not in " + evidence);
  }

  @Test
  void aCleanRunHoldsEveryInvariant() {
    Verdict verdict = CHECKER.check(clean());
    verdict.findings().forEach(f -> assertTrue(f.held(), () -> f.invariant() + ": " + f.evidence()));
    assertTrue(verdict.finding(Invariant.ACCURACY).evidence().get(0).contains("the same model bit for bit"));
  }

  @Test
  void measuresDetectionResumeAndReplayPerFault() {
    List<FaultTiming> timings = CHECKER.check(clean()).timings();
    // The kill: ill health 500 ms after it, steps past 5 in generation 2 at 5000, steps 6..7 again.
    assertEquals(new FaultTiming(1, "kill", "node 2", J,
        "re-formed as generation 2 (rank 1 failed) from checkpoint:c5", 500, 2000, 2), timings.get(0));
    // The hang: no re-formation; step 15 at 9500 was the first past the 8 seen before it.
    assertEquals(new FaultTiming(2, "hang", "node 3", J, "training went on in the same generation", -1, 2500, 0),
        timings.get(1));
  }

  @Test
  void observationOrderInTheFileDoesNotMatter() {
    List<Observation> shuffled = new ArrayList<>(clean());
    java.util.Collections.reverse(shuffled);
    assertEquals(CHECKER.check(clean()), CHECKER.check(shuffled));
  }

  @Test
  void aJobCutShortInsideItsFirstEpochIsCountedByItsMaxSteps() {
    // Max-steps 4 ends the job inside epoch 1, so no epoch's step count was ever known.
    List<Observation> h = List.of(
        new JobSubmitted(0, "short", 3, 4, 128, 1, 1, false, ""),
        new GenerationFormed(10, "short", 1, 1, 0, "init", "job submitted", List.of(0)),
        new StepsSeen(20, "short", 1, 4, 0, 1, null, ""),
        new EpochReported(30, "short", 1, 4, 512, true, 1, 1.2, 0.6),
        new JobEnded(40, "short", "SUCCEEDED", "", 4, 0.6, "m"),
        new Baseline(50, "short", 0.6, "m", 1),
        new JournalRead(60, "short", List.of(new WriterRun("w", 1, 6)), List.of()),
        new ClusterViews(60, 1, List.of(List.of("n1"))));
    Verdict verdict = CHECKER.check(h);
    assertTrue(verdict.held(), () -> verdict.findings().toString());
    List<Observation> tooFew = new ArrayList<>(h);
    tooFew.set(4, new JobEnded(40, "short", "SUCCEEDED", "", 3, 0.6, "m"));
    caught(tooFew, Invariant.STEP_LINEAGE, "after 3 steps, not 4");
  }

  // ------------------------------------------------------------------ 1

  @Test
  void aJobThatFailedBreaksTheOutcome() {
    caught(replace(clean(), JobEnded.class::isInstance, new JobEnded(11500, J, "FAILED", "gave up after 5 re-formations",
        20, 0.80, "d1")), Invariant.OUTCOME, "gave up after 5 re-formations");
  }

  @Test
  void aJobThatNeverEndedBreaksTheOutcome() {
    List<Observation> h = replace(clean(), JobEnded.class::isInstance, null);
    // Without an end the accuracy is not judged, and the last second counts as a sign of life.
    caught(h, Invariant.OUTCOME, "did not end (last seen at step 15, generation 2");
  }

  @Test
  void aJobMeantToFailThatSucceededBreaksTheOutcome() {
    caught(replace(clean(), JobSubmitted.class::isInstance, new JobSubmitted(0, J, 2, 0, 128, 2, 2, true, "diverged")),
        Invariant.OUTCOME, "was to fail");
  }

  // ------------------------------------------------------------------ 2

  @Test
  void anEpochThatReusedSamplesIsCaught() {
    caught(replace(clean(), o -> o instanceof EpochReported e && e.epoch() == 1,
        new EpochReported(6000, J, 1, 10, 1408, false, 2, 1.5, 0.70)), Invariant.EACH_SAMPLE_ONCE, "epoch 1 did not use");
  }

  @Test
  void aMissingEpochIsCaught() {
    caught(replace(clean(), o -> o instanceof EpochReported e && e.epoch() == 1, null), Invariant.EACH_SAMPLE_ONCE,
        "without reporting epoch 1 of 2");
  }

  @Test
  void anEpochReportedTwiceDifferentlyIsCaught() {
    caught(plus(clean(), new EpochReported(10500, J, 1, 12, 1280, true, 2, 1.4, 0.71)), Invariant.EACH_SAMPLE_ONCE,
        "epoch 1 was reported twice");
  }

  // ------------------------------------------------------------------ 3

  @Test
  void resumingAtAStepTheCheckpointDoesNotHoldIsCaught() {
    caught(replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 2, 6, "checkpoint:c5", "rank 1 failed", List.of(0, 2))),
        Invariant.STEP_LINEAGE, "resumed at step 6 from checkpoint c5, which holds step 5");
  }

  @Test
  void resumingFromAMemoryThatWasNotInTheGenerationIsCaught() {
    caught(replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 2, 7, "memory:job-1-worker-5", "rank 1 failed", List.of(0, 2))),
        Invariant.STEP_LINEAGE, "worker 5's memory, but it was not in generation 1");
  }

  @Test
  void resumingFromTheMemoryOfAnotherJobsWorkerIsCaught() {
    caught(replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 2, 7, "memory:job-2-worker-0", "rank 1 failed", List.of(0, 2))),
        Invariant.STEP_LINEAGE, "resumed from the memory of 'job-2-worker-0', which is no worker of the job");
  }

  @Test
  void resumingFromMemoryOlderThanACommittedCheckpointIsCaught() {
    caught(replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 2, 4, "memory:job-1-worker-0", "rank 1 failed", List.of(0, 2))),
        Invariant.STEP_LINEAGE, "older than checkpoint c5 at step 5");
  }

  @Test
  void resumingFromMemoryOlderThanACheckpointOfAnAbandonedLineageIsAllowed() {
    // Generation 2 resumed from c2 although c4 existed (say c4 could not be read): its survivors
    // may be behind c4, and only the checkpoints generation 2 itself wrote bound them.
    List<Observation> h = new ArrayList<>(List.of(
        new JobSubmitted(0, "m", 1, 0, 128, 2, 2, false, ""),
        new GenerationFormed(100, "m", 1, 2, 0, "init", "job submitted", List.of(0, 1)),
        new CheckpointCommitted(200, "m", "c2", 2, "s2"),
        new CheckpointCommitted(300, "m", "c4", 4, "s4"),
        new GenerationFormed(400, "m", 2, 2, 2, "checkpoint:c2", "rank 1 failed", List.of(0, 1)),
        new CheckpointVerified(450, "m", "c2", "s2", "s2"),
        new GenerationFormed(600, "m", 3, 2, 3, "memory:m-worker-1", "rank 0 failed", List.of(1, 2)),
        new StepsSeen(700, "m", 3, 10, 10, 2, null, ""),
        new EpochReported(800, "m", 1, 10, 1280, true, 2, 1.0, 0.8),
        new JobEnded(900, "m", "SUCCEEDED", "", 10, 0.8, "d"),
        new Baseline(950, "m", 0.8, "d", 2),
        new JournalRead(960, "m", List.of(new WriterRun("w", 1, 9)), List.of()),
        new ClusterViews(960, 1, List.of(List.of("n1")))));
    Verdict verdict = CHECKER.check(h);
    assertTrue(verdict.held(), () -> verdict.findings().toString());
    // But a checkpoint generation 2 wrote at step 5 means its survivors held step 5 at least.
    h.add(new CheckpointCommitted(500, "m", "c5", 5, "s5"));
    caught(h, Invariant.STEP_LINEAGE, "older than checkpoint c5 at step 5 that generation 2 had written");
  }

  @Test
  void startingOverWhileACheckpointExistsIsCaught() {
    caught(replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 2, 0, "init", "rank 1 failed", List.of(0, 2))),
        Invariant.STEP_LINEAGE, "started from scratch although checkpoint c5");
  }

  @Test
  void stepsGoingBackWithoutANewGenerationAreCaught() {
    caught(plus(clean(), steps(5500, 2, 6, "")), Invariant.STEP_LINEAGE, "went back from step 8 to 6");
  }

  @Test
  void aJobThatSucceededShortOfItsStepsIsCaught() {
    caught(replace(clean(), JobEnded.class::isInstance, new JobEnded(11500, J, "SUCCEEDED", "", 19, 0.80, "d1")),
        Invariant.STEP_LINEAGE, "after 19 steps, not 20");
  }

  @Test
  void aJournalWithLostEventsIsCaught() {
    caught(replace(clean(), JournalRead.class::isInstance, new JournalRead(12000, J,
        List.of(new WriterRun("w-a", 1, 10), new WriterRun("w-b", 12, 20)), List.of(11L))),
        Invariant.STEP_LINEAGE, "lacks events [11]");
  }

  // ------------------------------------------------------------------ 4

  @Test
  void aWriterComingBackAfterAnotherIsCaught() {
    caught(replace(clean(), JournalRead.class::isInstance, new JournalRead(12000, J, List.of(new WriterRun("w-a", 1, 10),
        new WriterRun("w-b", 11, 15), new WriterRun("w-a", 16, 20)), List.of())), Invariant.FENCING,
        "writer w-a wrote events 16..20 after another writer had taken over");
  }

  @Test
  void aDeviceWithTwoRanksIsCaught() {
    caught(replace(clean(), o -> o instanceof RanksPlaced r && r.generation() == 2, placed(4200, 2, "n1")),
        Invariant.FENCING, "device n1 cpu:0 was held by job job-1 generation 2 rank 0 and by job job-1 generation 2 rank 1");
  }

  @Test
  void aDeviceHeldByTwoJobsIsCaught() {
    // A second job, fine in itself, placed on the device that job-1's generation 2 holds.
    caught(plus(clean(), new JobSubmitted(4300, "job-2", 1, 2, 128, 1, 1, false, ""),
        new GenerationFormed(4350, "job-2", 1, 1, 0, "init", "job submitted", List.of(0)),
        new RanksPlaced(4400, "job-2", 1, List.of(new Rank(0, 0, "n3", "cpu:0"))),
        new StepsSeen(4500, "job-2", 1, 2, 10, 1, 1.0, ""),
        new EpochReported(4600, "job-2", 1, 2, 256, true, 1, 1.0, 0.5),
        new JobEnded(4700, "job-2", "SUCCEEDED", "", 2, 0.5, "e"),
        new Baseline(4800, "job-2", 0.5, "e", 1),
        new JournalRead(12000, "job-2", List.of(new WriterRun("w-c", 1, 5)), List.of())), Invariant.FENCING,
        "device n3 cpu:0 was held by job job-1 generation 2 rank 1 and by job job-2 generation 1 rank 0");
  }

  @Test
  void aPlacementOfAnOlderGenerationLapsesWhenTheNextForms() {
    // Generation 1 had rank 1 on n2; after generation 2 formed another job may take n2's device.
    Verdict verdict = CHECKER.check(plus(clean(), new RanksPlaced(4300, "job-x", 1, List.of(new Rank(0, 0, "n2", "cpu:0")))));
    assertTrue(verdict.finding(Invariant.FENCING).held(), () -> verdict.finding(Invariant.FENCING).evidence().toString());
  }

  @Test
  void aSplitClusterIsCaught() {
    caught(replace(clean(), ClusterViews.class::isInstance, new ClusterViews(12000, 3,
        List.of(List.of("n1", "n2", "n3"), List.of("n1", "n2", "n3"), List.of("n3")))), Invariant.FENCING,
        "do not agree on one cluster of 3");
  }

  @Test
  void anUnreadJournalIsNotAPass() {
    caught(replace(clean(), JournalRead.class::isInstance, null), Invariant.FENCING, "journal was not read");
  }

  // ------------------------------------------------------------------ 5

  @Test
  void aLoadedCheckpointWithOtherBytesIsCaught() {
    caught(replace(clean(), CheckpointVerified.class::isInstance, new CheckpointVerified(4100, J, "c5", "sha-a", "sha-z")),
        Invariant.CHECKPOINT_INTEGRITY, "hash to sha-z instead of the recorded sha-a");
  }

  @Test
  void aLoadedCheckpointNeverReadBackIsNotAPass() {
    caught(replace(clean(), CheckpointVerified.class::isInstance, null), Invariant.CHECKPOINT_INTEGRITY,
        "which the tool never read back");
  }

  @Test
  void aNonFiniteLossIsCaught() {
    caught(plus(clean(), new StepsSeen(5200, J, 2, 9, 10, 2, Double.NaN, "")), Invariant.CHECKPOINT_INTEGRITY,
        "reported loss NaN at step 9");
  }

  // ------------------------------------------------------------------ 6

  @Test
  void accuracyBeyondTheToleranceIsCaught() {
    caught(replace(clean(), Baseline.class::isInstance, new Baseline(12000, J, 0.83, "d1", 2)), Invariant.ACCURACY,
        "0.0300 from the fault-free 0.8300");
  }

  @Test
  void anotherModelAtAFixedWorldSizeIsCaught() {
    caught(replace(clean(), Baseline.class::isInstance, new Baseline(12000, J, 0.80, "d2", 2)), Invariant.ACCURACY,
        "differs from the fault-free d2");
  }

  @Test
  void anotherModelAfterTheWorldSizeChangedIsAllowed() {
    List<Observation> h = replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 1, 5, "checkpoint:c5", "rank 1 failed", List.of(0)));
    Verdict verdict = CHECKER.check(replace(h, Baseline.class::isInstance, new Baseline(12000, J, 0.80, "d2", 2)));
    assertTrue(verdict.held(), () -> verdict.findings().toString());
  }

  /** The run with its world shrunk to 1 from generation 2 on (another model is allowed then), and {@code more}. */
  private static List<Observation> shrunk(String reason, Observation... more) {
    List<Observation> h = replace(clean(), o -> o instanceof GenerationFormed g && g.generation() == 2,
        new GenerationFormed(4000, J, 2, 1, 5, "checkpoint:c5", reason, List.of(0)));
    return plus(replace(h, Baseline.class::isInstance, new Baseline(12000, J, 0.80, "d2", 2)), more);
  }

  @Test
  void aDamagedChunkThatStruckAndThatNoGenerationCitedIsCaught() {
    caught(shrunk("rank 1 failed", new FaultStarted(3800, 3, "chunk-corrupt", "rank 0", "at most 1 times"),
        new FaultStruck(3900, 3, 1), new FaultEnded(3900, 3)), Invariant.CHECKPOINT_INTEGRITY,
        "may have reached the parameters");
  }

  @Test
  void aDamagedChunkOrPoisonCaughtByARe_formationHolds() {
    Verdict chunk = CHECKER.check(shrunk("rank 1 failed: chunk 0 of round 1 of step 7 from rank 0 to rank 1: its values "
        + "do not match their checksum", new FaultStarted(3800, 3, "chunk-corrupt", "rank 0", ""),
        new FaultStruck(3900, 3, 1), new FaultEnded(3900, 3)));
    assertTrue(chunk.held(), () -> chunk.findings().toString());
    Verdict poison = CHECKER.check(shrunk("rank 0 failed: step 7 summed to a non-finite value (NaN at index 0)",
        new FaultStarted(3800, 3, "poison-nan", "rank 0", ""), new FaultStruck(3900, 3, 1), new FaultEnded(3900, 3)));
    assertTrue(poison.held(), () -> poison.findings().toString());
    assertTrue(poison.finding(Invariant.CHECKPOINT_INTEGRITY).evidence().stream().anyMatch(l -> l.contains("caught")));
  }

  @Test
  void aPoisonThatNeverStruckNeedsNoCatching() {
    Verdict verdict = CHECKER.check(shrunk("rank 1 failed", new FaultStarted(3800, 3, "poison-large", "rank 0", ""),
        new FaultStruck(3900, 3, 0), new FaultEnded(3900, 3)));
    assertTrue(verdict.held(), () -> verdict.findings().toString());
  }

  @Test
  void anotherModelThanABaselineWhoseWorldSizeChangedIsAllowed() {
    // The fault-free run grew (its world size is recorded as 0): its model is not a fixed world's.
    Verdict verdict = CHECKER.check(replace(clean(), Baseline.class::isInstance, new Baseline(12000, J, 0.80, "d2", 0)));
    assertTrue(verdict.held(), () -> verdict.findings().toString());
  }

  @Test
  void noFaultFreeRunToCompareIsNotAPass() {
    caught(replace(clean(), Baseline.class::isInstance, null), Invariant.ACCURACY, "no fault-free run");
  }

  // ------------------------------------------------------------------ 7

  @Test
  void aJobWithoutSignsOfLifeForLongerThanTheLimitIsCaught() {
    // Epoch 2 and the end come six minutes after the last change: the same step seen all along.
    List<Observation> h = new ArrayList<>();
    long late = 6 * 60_000;
    for (Observation o : clean()) {
      if (o instanceof EpochReported e && e.epoch() == 2) {
        h.add(new EpochReported(late + 11000, J, 2, 20, 1280, true, 2, 1.0, 0.80));
      } else if (o instanceof JobEnded e) {
        h.add(new JobEnded(late + 11500, J, e.phase(), e.message(), e.stepsDone(), e.testAccuracy(), e.digest()));
      } else if (o instanceof StepsSeen s && s.step() == 15) {
        h.add(steps(late + 9500, 2, 15, ""));
      } else {
        h.add(o);
      }
    }
    caught(h, Invariant.RECOVERY, "no progress, re-formation or change of health for 364 s from 6000");
  }

  @Test
  void trainingThatNeverResumedAfterAFaultIsCaught() {
    // The job re-formed after the kill but no step past 5 came, and it never ended.
    List<Observation> h = new ArrayList<>();
    for (Observation o : clean()) {
      boolean later = o.atMillis() > 4200 && !(o instanceof JournalRead) && !(o instanceof ClusterViews)
          && !(o instanceof Baseline);
      if (!later) {
        h.add(o);
      }
    }
    h.add(steps(6000, 2, 5, ""));
    Verdict verdict = CHECKER.check(h);
    List<String> evidence = verdict.finding(Invariant.RECOVERY).evidence();
    assertFalse(verdict.finding(Invariant.RECOVERY).held());
    assertTrue(evidence.stream().anyMatch(line -> line.contains("fault 1 (kill node 2): job job-1 never resumed")),
        evidence::toString);
  }
}
