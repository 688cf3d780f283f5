package kaon.actors.job;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.TreeMap;
import kaon.actors.worker.WorkerReport;

/**
 * The ranks' reports of one generation: of its unfinished epochs, summed once every rank's is in,
 * and of its end, judged once every rank finished. Plain values, no actor: the coordinator makes a
 * new one for each generation.
 */
final class RankReports {

  /** Reports of unfinished epochs: epoch to rank to report. */
  private final Map<Integer, Map<Integer, WorkerReport.EpochReport>> byEpoch = new TreeMap<>();
  /** Ranks that finished, by rank. */
  private final Map<Integer, WorkerReport.Finished> finished = new TreeMap<>();

  /** An epoch that every rank reported: its metrics, and the reports to acknowledge once recorded. */
  record Completed(EpochMetrics metrics, long stepsDone, List<WorkerReport.EpochReport> reports) {}

  /**
   * Adds {@code report} (a rank's report again replaces its first); the epoch's sum once {@code
   * worldSize} ranks reported it.
   */
  Optional<Completed> addEpoch(WorkerReport.EpochReport report, int worldSize) {
    Map<Integer, WorkerReport.EpochReport> reports = byEpoch.computeIfAbsent(report.epoch(), e -> new TreeMap<>());
    reports.put(report.rank(), report);
    if (reports.size() < worldSize) {
      return Optional.empty();
    }
    byEpoch.remove(report.epoch());
    return Optional.of(new Completed(sum(report.epoch(), reports.values(), worldSize, report.stepsDone()),
        report.stepsDone(), List.copyOf(reports.values())));
  }

  /** How the job ended, once every rank finished: the event to record and the reports to acknowledge. */
  record Outcome(JobEvent event, List<WorkerReport.Finished> reports) {}

  /**
   * Adds rank {@code report.rank()}'s final digest; once {@code worldSize} ranks finished, the
   * job's outcome: success with the test accuracy of its last epoch (the highest of {@code
   * recorded} and {@code waiting}, which may reach the journal out of order), or a failure if the
   * replicas diverged, ended at {@code nowMillis}.
   */
  Optional<Outcome> addFinished(WorkerReport.Finished report, int worldSize, List<EpochMetrics> recorded,
      List<EpochMetrics> waiting, long nowMillis) {
    finished.put(report.rank(), report);
    if (finished.size() < worldSize) {
      return Optional.empty();
    }
    List<WorkerReport.Finished> all = List.copyOf(finished.values());
    finished.clear();
    Set<String> digests = new TreeSet<>();
    all.forEach(f -> digests.add(f.digest()));
    if (digests.size() != 1) {
      return Optional.of(new Outcome(
          new JobEvent.JobFailed("replicas diverged: ranks ended with different parameters " + digests, nowMillis), all));
    }
    EpochMetrics last = null;
    for (EpochMetrics m : concat(recorded, waiting)) {
      if (last == null || m.epoch() > last.epoch()) {
        last = m;
      }
    }
    double accuracy = last == null ? Double.NaN : last.testAccuracy();
    return Optional.of(new Outcome(new JobEvent.JobSucceeded(accuracy, digests.iterator().next(), nowMillis), all));
  }

  private static List<EpochMetrics> concat(List<EpochMetrics> a, List<EpochMetrics> b) {
    List<EpochMetrics> all = new java.util.ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  /**
   * The metrics of 0-based epoch {@code epoch} from every rank's report. Training sums are global
   * on every rank (they travel with the gradients), so rank 0's stand for all; test sums are each
   * rank's share of the test split and add up. Each sample was used once only if every rank's
   * ledger says so and all saw the same number of examples. The epoch took as long as its slowest
   * rank.
   */
  static EpochMetrics sum(int epoch, Collection<WorkerReport.EpochReport> reports, int worldSize, long stepsDone) {
    WorkerReport.EpochReport first = reports.iterator().next();
    long examples = first.examples();
    boolean eachOnce = true;
    long testCorrect = 0;
    long testExamples = 0;
    long slowest = 1;
    for (WorkerReport.EpochReport r : reports) {
      eachOnce &= r.eachSampleOnce() && r.examples() == examples;
      testCorrect += r.testCorrect();
      testExamples += r.testExamples();
      slowest = Math.max(slowest, r.trainNanos());
    }
    double seconds = slowest / 1e9;
    return new EpochMetrics(
        epoch + 1,
        first.lossSum() / Math.max(1, examples),
        (double) first.correct() / Math.max(1, examples),
        testExamples == 0 ? Double.NaN : (double) testCorrect / testExamples,
        examples / seconds,
        seconds,
        worldSize,
        stepsDone,
        examples,
        eachOnce);
  }
}
