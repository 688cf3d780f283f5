package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** When a job looks for devices, and whether it grows: one rule per test. */
class GrowthPolicyTest {

  private final GrowthPolicy policy = new GrowthPolicy(Duration.ofSeconds(10), Duration.ofSeconds(1), 10);

  @Test
  void aJobBelowItsMaximumLooksAtTheSlowPace() {
    assertEquals(Optional.of(Duration.ofSeconds(10)), policy.lookEvery(true, 2, 4, 0));
  }

  @Test
  void afterANodeJoinedItLooksFast() {
    assertEquals(Optional.of(Duration.ofSeconds(1)), policy.lookEvery(true, 2, 4, 3));
  }

  @Test
  void aJobAtItsMaximumDoesNotLook() {
    assertEquals(Optional.empty(), policy.lookEvery(true, 4, 4, 3));
  }

  @Test
  void aJobThatIsNotActiveDoesNotLook() {
    assertEquals(Optional.empty(), policy.lookEvery(false, 1, 4, 0));
  }

  @Test
  void itGrowsToTheDevicesThereAreUpToItsMaximum() {
    assertEquals(OptionalInt.of(3), policy.growTo(3, 2, 4));
    assertEquals(OptionalInt.of(4), policy.growTo(9, 2, 4));
  }

  @Test
  void noMoreDevicesThanItHasIsNoReasonToGrow() {
    assertEquals(OptionalInt.empty(), policy.growTo(2, 2, 4));
    assertEquals(OptionalInt.empty(), policy.growTo(1, 2, 4));
  }
}
