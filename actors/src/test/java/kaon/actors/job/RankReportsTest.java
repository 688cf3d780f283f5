package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import kaon.actors.worker.WorkerReport;
import org.junit.jupiter.api.Test;

/** How the ranks' reports of an epoch and of the end add up: one rule per test. */
class RankReportsTest {

  /** Rank {@code rank}'s report of 0-based epoch 0 of generation 1. */
  private static WorkerReport.EpochReport report(int rank, long examples, boolean once, long testCorrect, long testExamples,
      long nanos) {
    return new WorkerReport.EpochReport(1, rank, rank, 0, 120.0, 900, examples, once, testCorrect, testExamples, nanos, 468);
  }

  @Test
  void anEpochIsSummedOnlyOnceEveryRankReportedIt() {
    RankReports reports = new RankReports();
    assertTrue(reports.addEpoch(report(0, 1000, true, 80, 100, 2_000_000_000L), 2).isEmpty());
    assertTrue(reports.addEpoch(report(1, 1000, true, 90, 100, 1_000_000_000L), 2).isPresent());
  }

  @Test
  void aRankReportingAgainDoesNotCountTwice() {
    RankReports reports = new RankReports();
    reports.addEpoch(report(0, 1000, true, 80, 100, 1), 2);
    assertTrue(reports.addEpoch(report(0, 1000, true, 80, 100, 1), 2).isEmpty());
  }

  @Test
  void trainingSumsAreRankZerosAndTestSumsAddUp() {
    EpochMetrics m = summed(report(0, 1000, true, 80, 100, 1_000_000_000L), report(1, 1000, true, 90, 100, 1_000_000_000L));
    assertEquals(1, m.epoch(), "1-based");
    assertEquals(0.12, m.meanLoss(), 1e-12);
    assertEquals(0.9, m.trainAccuracy(), 1e-12);
    assertEquals(0.85, m.testAccuracy(), 1e-12);
    assertEquals(1000, m.samples());
    assertEquals(468, m.stepsDone());
    assertEquals(2, m.worldSize());
  }

  @Test
  void theEpochTookAsLongAsItsSlowestRank() {
    EpochMetrics m = summed(report(0, 1000, true, 0, 0, 1_000_000_000L), report(1, 1000, true, 0, 0, 4_000_000_000L));
    assertEquals(4.0, m.trainSeconds(), 1e-12);
    assertEquals(250.0, m.samplesPerSecond(), 1e-9);
  }

  @Test
  void withoutTestExamplesTheTestAccuracyIsNotANumber() {
    assertTrue(Double.isNaN(summed(report(0, 1000, true, 0, 0, 1), report(1, 1000, true, 0, 0, 1)).testAccuracy()));
  }

  @Test
  void eachSampleOnceOnlyIfEveryRanksLedgerSaysSo() {
    assertFalse(summed(report(0, 1000, true, 0, 0, 1), report(1, 1000, false, 0, 0, 1)).eachSampleOnce());
  }

  @Test
  void eachSampleOnceOnlyIfEveryRankSawTheSameNumberOfExamples() {
    assertFalse(summed(report(0, 1000, true, 0, 0, 1), report(1, 999, true, 0, 0, 1)).eachSampleOnce());
  }

  @Test
  void identicalDigestsSucceedWithTheTestAccuracyOfTheHighestEpoch() {
    RankReports reports = new RankReports();
    List<EpochMetrics> recorded = List.of(metrics(2, 0.80), metrics(1, 0.70));
    List<EpochMetrics> waiting = List.of(metrics(3, 0.85));
    assertTrue(reports.addFinished(new WorkerReport.Finished(1, 0, 5, "ab"), 2, recorded, waiting, 1000).isEmpty());
    RankReports.Outcome outcome =
        reports.addFinished(new WorkerReport.Finished(1, 1, 5, "ab"), 2, recorded, waiting, 2000).orElseThrow();
    assertEquals(new JobEvent.JobSucceeded(0.85, "ab", 2000), outcome.event(), "it ended when the last rank finished");
    assertEquals(2, outcome.reports().size());
  }

  @Test
  void differentDigestsFailTheJobNamingThem() {
    RankReports reports = new RankReports();
    reports.addFinished(new WorkerReport.Finished(1, 0, 5, "ab"), 2, List.of(), List.of(), 1000);
    RankReports.Outcome outcome =
        reports.addFinished(new WorkerReport.Finished(1, 1, 5, "cd"), 2, List.of(), List.of(), 2000).orElseThrow();
    assertEquals(new JobEvent.JobFailed("replicas diverged: ranks ended with different parameters [ab, cd]", 2000),
        outcome.event());
  }

  private static EpochMetrics summed(WorkerReport.EpochReport... reports) {
    return RankReports.sum(0, List.of(reports), reports.length, 468);
  }

  private static EpochMetrics metrics(int epoch, double testAccuracy) {
    return new EpochMetrics(epoch, 0.5, 0.8, testAccuracy, 1000, 1, 2, 468L * epoch, 1000, true);
  }
}
