package kaon.actors.training;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Which summed steps may be applied: one rule per test. */
class DivergenceGuardTest {

  @Test
  void aFiniteStepPasses() {
    assertDoesNotThrow(() -> new DivergenceGuard(1e4).check(0, new float[] {0.5f, -2f, 3f, 100f}, 3));
  }

  @Test
  void aNaNGradientIsRefusedNamingWhere() {
    var e = assertThrows(DivergenceGuard.DivergedException.class,
        () -> new DivergenceGuard(1e4).check(7, new float[] {0.5f, Float.NaN, 3f, 100f}, 3));
    assertTrue(e.getMessage().startsWith("step 7 summed to a non-finite value (NaN at index 1 of 4)"), e.getMessage());
  }

  @Test
  void anInfiniteSumAfterTheGradientsIsRefusedToo() {
    var e = assertThrows(DivergenceGuard.DivergedException.class,
        () -> new DivergenceGuard(0).check(3, new float[] {0.5f, 1f, Float.POSITIVE_INFINITY}, 2));
    assertTrue(e.getMessage().contains("at index 2 of 3"), e.getMessage());
  }

  @Test
  void aPeakFarAboveTheTypicalIsRefused() {
    DivergenceGuard guard = new DivergenceGuard(100);
    guard.check(0, new float[] {1f, -2f}, 2);
    var e = assertThrows(DivergenceGuard.DivergedException.class, () -> guard.check(1, new float[] {1f, 500f}, 2));
    assertTrue(e.getMessage().contains("250 times its typical 2.000"), e.getMessage());
  }

  @Test
  void aPeakWithinTheFactorPassesAndMovesTheTypical() {
    DivergenceGuard guard = new DivergenceGuard(100);
    guard.check(0, new float[] {2f}, 1);
    guard.check(1, new float[] {150f}, 1); // 75x: allowed, and the typical becomes 16.8
    assertThrows(DivergenceGuard.DivergedException.class, () -> guard.check(2, new float[] {1700f}, 1));
  }

  @Test
  void withTheFactorOffOnlyFinitenessCounts() {
    DivergenceGuard guard = new DivergenceGuard(0);
    guard.check(0, new float[] {1f}, 1);
    assertDoesNotThrow(() -> guard.check(1, new float[] {1e30f}, 1));
  }

  @Test
  void theFirstStepHasNoTypicalToCompareWith() {
    assertDoesNotThrow(() -> new DivergenceGuard(2).check(0, new float[] {1e20f}, 1));
  }

  @Test
  void negativeValuesCountByTheirMagnitude() {
    // The peak is taken over the values' bits without the sign: -500 is a peak of 500, a NaN
    // with the sign bit set or a negative infinity is refused like any other.
    DivergenceGuard guard = new DivergenceGuard(100);
    guard.check(0, new float[] {-1f, 2f}, 2);
    var e = assertThrows(DivergenceGuard.DivergedException.class, () -> guard.check(1, new float[] {1f, -500f}, 2));
    assertTrue(e.getMessage().contains("250 times its typical 2.000"), e.getMessage());
    assertThrows(DivergenceGuard.DivergedException.class,
        () -> new DivergenceGuard(0).check(2, new float[] {0f, Float.NEGATIVE_INFINITY}, 2));
    assertThrows(DivergenceGuard.DivergedException.class,
        () -> new DivergenceGuard(0).check(2, new float[] {Float.intBitsToFloat(0xffc00001), 0f}, 2));
  }
}
