package kaon.actors.job;

import java.time.Duration;

/**
 * What a job does when one of its ranks fails: re-form at once, re-form after a backoff, or give
 * up. A pure function of the failure and of how many generations in a row have failed without
 * progress (an epoch or a checkpoint recorded resets the count).
 *
 * <p>A retryable failure (a lost node, a missed all-reduce deadline) re-forms the job with whoever
 * is left: the first at once, the following ones after a backoff that doubles from {@code
 * backoffMin} to {@code backoffMax} (1 s to 16 s in production), giving the cluster time to settle (a node being downed, devices changing hands). A retryable
 * failure that keeps coming back is not transient: after {@code maxFailuresWithoutProgress} the job
 * fails. Running out of devices is the cluster's doing, not the rank's: it never makes the job
 * give up, and the job waits for devices instead. Anything else (an unknown task, missing data, a
 * bug) fails the job at once.
 *
 * @param maxFailuresWithoutProgress generations in a row that may fail before the job gives up
 * @param backoffMin the base of the backoff: the n-th re-formation in a row waits backoffMin x 2^(n-1)
 * @param backoffMax the longest wait
 */
record FailurePolicy(int maxFailuresWithoutProgress, Duration backoffMin, Duration backoffMax) {

  FailurePolicy {
    if (maxFailuresWithoutProgress < 1) {
      throw new IllegalArgumentException("maxFailuresWithoutProgress must be at least 1, was " + maxFailuresWithoutProgress);
    }
    if (backoffMin.isNegative() || backoffMax.compareTo(backoffMin) < 0) {
      throw new IllegalArgumentException("re-formation backoff from " + backoffMin + " to " + backoffMax + " runs backwards");
    }
  }

  /** Production's backoff: 1 s doubling to 16 s. */
  FailurePolicy(int maxFailuresWithoutProgress) {
    this(maxFailuresWithoutProgress, Duration.ofSeconds(1), Duration.ofSeconds(16));
  }

  /** The verdict, with the count of failures without progress that it leaves. */
  sealed interface Verdict {
    /** Failures in a row without progress, this one included. */
    int failuresWithoutProgress();
  }

  /** Form a new generation now. */
  record ReformNow(int failuresWithoutProgress) implements Verdict {}

  /** Stop the ranks now and form a new generation after {@code backoff}. */
  record ReformAfter(Duration backoff, int failuresWithoutProgress) implements Verdict {}

  /** Fail the job for {@code reason}. */
  record GiveUp(String reason, int failuresWithoutProgress) implements Verdict {}

  /**
   * The verdict on a rank's failure described by {@code reason}, after {@code failuresSoFar}
   * generations in a row failed without progress.
   */
  Verdict decide(String reason, boolean retryable, boolean noDevice, int failuresSoFar) {
    int before = noDevice ? Math.min(failuresSoFar, maxFailuresWithoutProgress - 1) : failuresSoFar;
    if (!retryable) {
      return new GiveUp(reason, before);
    }
    int failures = before + 1;
    if (failures > maxFailuresWithoutProgress) {
      return new GiveUp(reason + " (" + maxFailuresWithoutProgress + " generations in a row made no progress)", failures);
    }
    if (failures == 1) {
      return new ReformNow(failures);
    }
    Duration backoff = backoffMin.multipliedBy(1L << Math.min(20, failures - 1));
    return new ReformAfter(backoff.compareTo(backoffMax) > 0 ? backoffMax : backoff, failures);
  }
}
