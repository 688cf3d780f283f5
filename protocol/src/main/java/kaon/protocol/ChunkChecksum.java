package kaon.protocol;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The checksum that guards a chunk's values on the wire: CRC32C of their little-endian bytes,
 * written after them by the sender and recomputed by the receiver (Artery's TCP framing and the
 * tensor link carry no checksum of their own, and TCP's 16-bit one misses some corruptions that
 * a bad NIC or a memory error make). A summed chunk that was damaged would reach every replica's
 * parameters alike, where nothing could tell it from a real gradient.
 *
 * <p>CRC32C rather than CRC32: the JIT computes it with the CPU's crc32 instruction, some
 * gigabytes a second, small beside the add that follows.
 */
public final class ChunkChecksum {

  private ChunkChecksum() {}

  /** The checksum of {@code region}'s remaining bytes; its position is left as it was. */
  public static int of(ByteBuffer region) {
    CRC32C crc = new CRC32C();
    crc.update(region.duplicate());
    return (int) crc.getValue();
  }

  /** Why values whose checksum is {@code actual} are not those sent with {@code expected}, or null if they are. */
  public static String damage(int expected, int actual) {
    return expected == actual ? null
        : "its values do not match their checksum (CRC32C " + Integer.toHexString(actual) + ", sent "
            + Integer.toHexString(expected) + "): damaged on the way";
  }
}
