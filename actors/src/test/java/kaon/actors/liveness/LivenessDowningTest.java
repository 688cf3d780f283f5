package kaon.actors.liveness;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

/** When a node that saw another's process end downs it: one rule per test. */
class LivenessDowningTest {

  private static final Set<String> THREE = Set.of("a", "b", "c");

  @Test
  void aDeadMemberIsDownedByANodeThatReachesTheRestOfAMajority() {
    assertTrue(LivenessDowning.shouldDown("c", THREE, THREE, Set.of()));
    assertTrue(LivenessDowning.shouldDown("c", THREE, THREE, Set.of("c")), "already unreachable: still downed now");
  }

  @Test
  void aNodeThatDoesNotReachAMajorityWithoutItLeavesItToTheResolver() {
    assertFalse(LivenessDowning.shouldDown("c", THREE, THREE, Set.of("b")), "1 of 3 reached");
    assertFalse(LivenessDowning.shouldDown("b", Set.of("a", "b"), Set.of("a", "b"), Set.of()), "1 of 2 is no majority");
    Set<String> five = Set.of("a", "b", "c", "d", "e");
    assertTrue(LivenessDowning.shouldDown("e", five, five, Set.of("d")), "3 of 5");
    assertFalse(LivenessDowning.shouldDown("e", five, five, Set.of("c", "d")), "2 of 5");
  }

  @Test
  void aNodeThatIsNoMemberOrIsLeavingOrDownAlreadyIsNotDowned() {
    assertFalse(LivenessDowning.shouldDown("x", THREE, THREE, Set.of()), "not a member");
    assertFalse(LivenessDowning.shouldDown("c", THREE, Set.of("a", "b"), Set.of()), "leaving, exiting or down");
  }
}
