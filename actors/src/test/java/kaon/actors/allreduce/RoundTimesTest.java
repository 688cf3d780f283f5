package kaon.actors.allreduce;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class RoundTimesTest {

  private static final AllReduceSettings SETTINGS =
      new AllReduceSettings(1024, Duration.ofSeconds(60), Duration.ofSeconds(1), 20);
  private static final long MS = 1_000_000L;

  @Test
  void theFirstRoundGetsTheWarmUpTimeoutAndFastRoundsTheFloor() {
    RoundTimes times = new RoundTimes();
    assertEquals(Duration.ofSeconds(60), times.deadline(SETTINGS));
    for (int i = 0; i < 50; i++) {
      times.record(2 * MS);
    }
    assertEquals(Duration.ofSeconds(1), times.deadline(SETTINGS), "20 x 2 ms and 3 x 2 ms are under the floor");
  }

  @Test
  void slowRoundsScaleTheDeadlineByTheSmoothedTime() {
    RoundTimes times = new RoundTimes();
    for (int i = 0; i < 100; i++) {
      times.record(100 * MS);
    }
    assertEquals(2_000, times.deadline(SETTINGS).toMillis(), 1, "20 x 100 ms");
  }

  @Test
  void aRegularlySlowRoundKeepsTheDeadlineAboveItUntilItIsLongPast() {
    RoundTimes times = new RoundTimes();
    times.record(2 * MS);
    times.record(700 * MS); // a checkpoint copied out on one rank
    assertEquals(2_832, times.deadline(SETTINGS).toMillis(), 1, "20 x the smoothed 141.6 ms, above 3 x the peak");
    for (int i = 0; i < 99; i++) {
      times.record(2 * MS);
    }
    long afterHundred = times.deadline(SETTINGS).toMillis();
    assertEquals(Math.round(2_100 * Math.pow(0.995, 99)), afterHundred, 2, "the peak decays slowly");
    for (int i = 0; i < 1_000; i++) {
      times.record(2 * MS);
    }
    assertEquals(Duration.ofSeconds(1), times.deadline(SETTINGS), "long past, back to the floor");
  }
}
