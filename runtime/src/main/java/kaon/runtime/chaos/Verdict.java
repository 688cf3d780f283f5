package kaon.runtime.chaos;

import java.util.List;

/**
 * What the checker concluded about a run: each invariant held or not, with its evidence, and how
 * each fault played out.
 */
public record Verdict(List<Finding> findings, List<FaultTiming> timings) {

  /** One invariant: whether it held, and the facts that say so (on failure, the violations). */
  public record Finding(Invariant invariant, boolean held, List<String> evidence) {}

  /**
   * How one fault played out for one job: {@code effect} in words; the milliseconds from the fault
   * until the job noticed (re-formed or reported ill health) and until its steps advanced again, and
   * the steps it had to train again; -1 where that did not happen.
   */
  public record FaultTiming(int fault, String kind, String target, String jobId, String effect, long detectMillis,
      long resumeMillis, long stepsReplayed) {}

  /** True when every invariant held. */
  public boolean held() {
    return findings.stream().allMatch(Finding::held);
  }

  /** The finding of one invariant. */
  public Finding finding(Invariant invariant) {
    return findings.stream().filter(f -> f.invariant() == invariant).findFirst().orElseThrow();
  }
}
