package kaon.protocol;

import java.nio.ByteBuffer;
import java.util.function.IntConsumer;

/**
 * A buffer under reduction whose regions are lent to Artery's serializer instead of copied into
 * chunk messages ({@link TensorChunkView}), and the count of regions still to be written.
 *
 * <p>Artery serializes a message later, on its own stream thread. A region's values are safe to
 * read until the reduction completes, since the ring rewrites a region only after the right
 * neighbour has received it. After that the caller owns the buffer again, so the owner of the
 * reduction waits for {@link #whenWritten} before it replies. Should Artery never write a region
 * (a connection that is gone), the owner gives up and {@link #withdraw}s the buffer: from then
 * on the serializer writes no values, only an empty chunk that receivers drop.
 *
 * <p>Thread-safe: the owner lends and withdraws on its thread, the serializer writes on Artery's.
 * One lock orders them; the serializer holds it while it copies a region, so that a withdrawal
 * never overlaps a read.
 */
public final class LentBuffer {

  private final float[] buffer;
  private int lent;
  private int written;
  private boolean withdrawn;
  private Runnable onWritten;

  /** Lends regions of {@code buffer}; nothing is lent yet. */
  public LentBuffer(float[] buffer) {
    this.buffer = buffer;
  }

  /** Counts one more region lent: a {@link TensorChunkView} of it is about to be sent. */
  public synchronized void lend() {
    lent++;
  }

  /**
   * Runs {@code action} once every lent region was written (or at once, returning true, if they
   * all are already); it runs on the serializer's thread otherwise, so it must only hand off.
   *
   * @return true if every region was written already and {@code action} has run
   */
  public boolean whenWritten(Runnable action) {
    synchronized (this) {
      if (written < lent && !withdrawn) {
        onWritten = action;
        return false;
      }
    }
    action.run();
    return true;
  }

  /** Regions lent but not written yet. */
  public synchronized int unwritten() {
    return lent - written;
  }

  /**
   * Ends the loan: regions not written yet never will be, and a pending {@link #whenWritten}
   * action is dropped. Returns at once if Artery is copying a region, after that copy.
   */
  public synchronized void withdraw() {
    withdrawn = true;
    onWritten = null;
  }

  /**
   * Writes a chunk's header and {@code length} values from {@code offset} at the buffer's
   * position, in its byte order, and advances it; {@link TensorChunkSerializer} calls this with
   * the buffer set to little-endian. If the buffer was withdrawn, the header announces no values
   * and none are written.
   *
   * @param header writes the header for the number of values it is given
   */
  void write(int offset, int length, ByteBuffer out, IntConsumer header) {
    Runnable action = null;
    synchronized (this) {
      if (withdrawn) {
        header.accept(0);
        return;
      }
      header.accept(length);
      TensorChunkSerializer.putFloats(out, buffer, offset, length);
      if (++written == lent && onWritten != null) {
        action = onWritten;
        onWritten = null;
      }
    }
    if (action != null) {
      action.run();
    }
  }
}
