package kaon.actors.allreduce;

import java.time.Duration;

/**
 * How long an {@link AllReducePeer}'s rounds take, and so how long the next may take before its
 * missing neighbour counts as hung. A round's time is this rank's wait for the slowest rank too,
 * so it follows the model and the machine: the deadline is the largest of a floor, {@code
 * timeout-factor} times the smoothed round time, and three times the slowest recent round (which
 * decays by half over about 140 rounds). The last covers rounds that are regularly slower than
 * the mean, such as a rank that copies a checkpoint out every hundred steps, so that a floor
 * low enough to find a hung rank in about a second does not also fail a busy one. Before any
 * round completed, the first round's timeout applies: it absorbs warm-up. Plain state of the peer.
 */
final class RoundTimes {

  /** Weight of the newest round in the smoothed time. */
  private static final double SMOOTHING = 0.2;
  /** Per round, the recent peak shrinks by this factor unless a slower round renews it. */
  private static final double PEAK_DECAY = 0.995;
  /** A round may take this multiple of the recent peak. */
  private static final double PEAK_FACTOR = 3;

  private double smoothedNanos = -1;
  private double peakNanos;

  /** A round completed in {@code nanos}. */
  void record(long nanos) {
    smoothedNanos = smoothedNanos < 0 ? nanos : (1 - SMOOTHING) * smoothedNanos + SMOOTHING * nanos;
    peakNanos = Math.max(nanos, peakNanos * PEAK_DECAY);
  }

  /** The next round's deadline under {@code settings}. */
  Duration deadline(AllReduceSettings settings) {
    if (smoothedNanos < 0) {
      return settings.firstRoundTimeout();
    }
    long nanos = (long) Math.max(smoothedNanos * settings.timeoutFactor(), peakNanos * PEAK_FACTOR);
    return Duration.ofNanos(Math.max(nanos, settings.minRoundTimeout().toNanos()));
  }
}
