package kaon.actors.allreduce;

import java.time.Duration;

/**
 * How ring all-reduce rounds are cut and timed; read once from {@code kaon.allreduce}.
 *
 * @param chunkFloats floats per chunk message; chunks pipeline a segment through the ring and
 *     must stay well under Artery's frame size when they cross JVMs
 * @param firstRoundTimeout deadline of a generation's first round, which also absorbs peers still
 *     warming up (JIT, first GEMMs)
 * @param minRoundTimeout lower bound of every later deadline
 * @param timeoutFactor later deadlines are this multiple of the smoothed round time, so a slow
 *     model is not declared dead and a fast one does not wait long on a dead peer
 */
public record AllReduceSettings(
    int chunkFloats, Duration firstRoundTimeout, Duration minRoundTimeout, double timeoutFactor) {

  public AllReduceSettings {
    if (chunkFloats <= 0) {
      throw new IllegalArgumentException("chunkFloats must be positive, was " + chunkFloats);
    }
    if (timeoutFactor < 1) {
      throw new IllegalArgumentException("timeoutFactor must be at least 1, was " + timeoutFactor);
    }
  }
}
