package kaon.actors.allreduce;

import java.time.Duration;
import java.util.Locale;
import java.util.Objects;

/**
 * How ring all-reduce rounds are cut, timed and carried; read once from {@code kaon.allreduce}.
 *
 * @param chunkFloats floats per chunk message; chunks pipeline a segment through the ring and
 *     must stay well under Artery's frame size when they cross JVMs
 * @param firstRoundTimeout deadline of a generation's first round, which also absorbs peers still
 *     warming up (JIT, first GEMMs)
 * @param minRoundTimeout lower bound of every later deadline
 * @param timeoutFactor later deadlines are this multiple of the smoothed round time, so a slow
 *     model is not declared dead and a fast one does not wait long on a dead peer
 * @param transport how chunks reach a right neighbour on another node; one in the same JVM always
 *     gets them as plain references
 * @param sharedMemory whether a generation whose ranks all run in one JVM reduces through memory
 *     they share ({@link SharedReduction}) instead of the ring's chunks
 */
public record AllReduceSettings(
    int chunkFloats, Duration firstRoundTimeout, Duration minRoundTimeout, double timeoutFactor, Transport transport,
    boolean sharedMemory) {

  /** How chunks cross to another node. */
  public enum Transport {
    /** As actor messages over Artery, like every other message. */
    ARTERY,
    /**
     * Over a {@link TensorLink}: a dedicated TCP connection per ring edge, without Artery's
     * copies and garbage (3-4x its bandwidth in bench/allreduce), with Artery as the fallback
     * while it is not up.
     */
    LINK;

    /**
     * Reads {@code artery} or {@code link}, as written in config.
     *
     * @throws IllegalArgumentException for anything else
     */
    public static Transport parse(String name) {
      return switch (name.trim().toLowerCase(Locale.ROOT)) {
        case "artery" -> ARTERY;
        case "link" -> LINK;
        default -> throw new IllegalArgumentException(
            "kaon.allreduce.transport must be artery or link, was '" + name + "'");
      };
    }
  }

  public AllReduceSettings {
    if (chunkFloats <= 0) {
      throw new IllegalArgumentException("chunkFloats must be positive, was " + chunkFloats);
    }
    if (timeoutFactor < 1) {
      throw new IllegalArgumentException("timeoutFactor must be at least 1, was " + timeoutFactor);
    }
    Objects.requireNonNull(transport, "transport");
  }

  /** Settings that keep every chunk on Artery, as before the tensor link existed. */
  public AllReduceSettings(int chunkFloats, Duration firstRoundTimeout, Duration minRoundTimeout, double timeoutFactor) {
    this(chunkFloats, firstRoundTimeout, minRoundTimeout, timeoutFactor, Transport.ARTERY);
  }

  /** Settings with ranks of one JVM sharing memory, as by default. */
  public AllReduceSettings(int chunkFloats, Duration firstRoundTimeout, Duration minRoundTimeout, double timeoutFactor,
      Transport transport) {
    this(chunkFloats, firstRoundTimeout, minRoundTimeout, timeoutFactor, transport, true);
  }

  /** These settings with chunks crossing nodes over {@code transport}. */
  public AllReduceSettings withTransport(Transport transport) {
    return new AllReduceSettings(chunkFloats, firstRoundTimeout, minRoundTimeout, timeoutFactor, transport, sharedMemory);
  }

  /** These settings with ranks of one JVM sharing memory or not. */
  public AllReduceSettings withSharedMemory(boolean on) {
    return new AllReduceSettings(chunkFloats, firstRoundTimeout, minRoundTimeout, timeoutFactor, transport, on);
  }
}
