package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import kaon.runtime.chaos.Scenario.Target;
import org.junit.jupiter.api.Test;

/** Which node a fault hits ({@link FaultInjector#choose}). */
class FaultInjectorTest {

  private static final Random RANDOM = new Random(3);

  @Test
  void aNumberedNodeIsHitAsNamedEvenWhenBusy() {
    assertEquals(Optional.of(2), FaultInjector.choose(new Target.Node(2), false, 3, Set.of(), Set.of(2), Optional.empty(), RANDOM));
  }

  @Test
  void anyNodeIsOneThatIsUpAndFree() {
    Set<Integer> drawn = new HashSet<>();
    for (int k = 0; k < 200; k++) {
      drawn.add(FaultInjector.choose(new Target.Any(), false, 4, Set.of(1), Set.of(3), Optional.empty(), RANDOM).orElseThrow());
    }
    assertEquals(Set.of(2, 4), drawn, "node 1 is kept down and node 3 busy");
    assertTrue(FaultInjector.choose(new Target.Any(), false, 2, Set.of(1), Set.of(2), Optional.empty(), RANDOM).isEmpty());
  }

  @Test
  void theCoordinatorsNodeWhenKnownElseAnyFreeOne() {
    assertEquals(Optional.of(3),
        FaultInjector.choose(new Target.Coordinator(), false, 3, Set.of(), Set.of(), Optional.of(3), RANDOM));
    assertEquals(Optional.of(2),
        FaultInjector.choose(new Target.Coordinator(), false, 2, Set.of(), Set.of(1), Optional.empty(), RANDOM));
  }

  @Test
  void aRestartTakesANodeThatAFaultKeepsDown() {
    assertEquals(Optional.of(2), FaultInjector.choose(new Target.Any(), true, 3, Set.of(2), Set.of(), Optional.empty(), RANDOM));
    assertTrue(FaultInjector.choose(new Target.Any(), true, 3, Set.of(), Set.of(), Optional.empty(), RANDOM).isEmpty(),
        "nothing is down to restart");
  }
}
