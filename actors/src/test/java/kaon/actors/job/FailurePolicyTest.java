package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** What a rank's failure leads to: one rule per test. */
class FailurePolicyTest {

  private final FailurePolicy policy = new FailurePolicy(5);

  @Test
  void theFirstRetryableFailureReformsAtOnce() {
    assertEquals(new FailurePolicy.ReformNow(1), policy.decide("rank 1 failed", true, false, 0));
  }

  @Test
  void repeatedFailuresBackOffDoublingFromOneSecond() {
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(2), 2), policy.decide("x", true, false, 1));
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(4), 3), policy.decide("x", true, false, 2));
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(8), 4), policy.decide("x", true, false, 3));
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(16), 5), policy.decide("x", true, false, 4));
  }

  @Test
  void theBackoffStopsGrowingAtSixteenSeconds() {
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(16), 9), new FailurePolicy(20).decide("x", true, false, 8));
  }

  @Test
  void aFailureThatKeepsComingBackFailsTheJobAndSaysWhy() {
    assertEquals(new FailurePolicy.GiveUp("rank 0 failed: boom (5 generations in a row made no progress)", 6),
        policy.decide("rank 0 failed: boom", true, false, 5));
  }

  @Test
  void aFailureThatCannotBeRetriedFailsTheJobAtOnceWithItsOwnReason() {
    assertEquals(new FailurePolicy.GiveUp("rank 0 failed: unknown task 'x'", 0),
        policy.decide("rank 0 failed: unknown task 'x'", false, false, 0));
  }

  @Test
  void runningOutOfDevicesNeverMakesTheJobGiveUp() {
    // However many failures came before, a missing device leaves room for one more attempt.
    assertEquals(new FailurePolicy.ReformAfter(Duration.ofSeconds(16), 5), policy.decide("no device", true, true, 9));
  }

  @Test
  void atLeastOneAttemptIsAllowed() {
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new FailurePolicy(0));
  }
}
