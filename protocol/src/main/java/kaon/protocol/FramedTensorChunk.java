package kaon.protocol;

import java.nio.FloatBuffer;
import java.util.Objects;

/**
 * A chunk that Artery received over TCP, read in place: its values stay in the frame Artery
 * allocated for this one message, and {@link #addTo} reads them from there.
 *
 * <p>Artery's TCP framing copies every inbound frame into a fresh {@code byte[]} and never reuses
 * it (its buffer pool takes back direct buffers only), so the view stays valid for as long as the
 * chunk is referenced. A megabyte {@code float[]} per chunk, as a copy would need, is a humongous
 * object to G1 that the JVM zeroes before the copy overwrites it: that memset and copy took about
 * 8% of each JVM's CPU time in bench/allreduce over Artery. {@link TensorChunkSerializer}
 * makes this view only from a heap buffer; pooled direct buffers (the Aeron transport) get a copy.
 *
 * @param values the values, little-endian floats in the frame
 * @param damage null, or why the values are not those sent (they failed their {@link ChunkChecksum})
 */
public record FramedTensorChunk(
    String jobId, long generation, long step, int round, int chunk, int offset, FloatBuffer values, String damage)
    implements InboundChunk {

  /**
   * Values added per block: the block goes through a small array that stays in the L1 cache, so
   * that the add itself runs on plain arrays, which the JIT vectorizes.
   */
  private static final int BLOCK = 4096;

  /** Checks that the fields are present. */
  public FramedTensorChunk {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(values, "values");
  }

  @Override
  public int length() {
    return values.remaining();
  }

  @Override
  public void addTo(float[] target, int at) {
    int length = length();
    float[] block = new float[Math.min(BLOCK, length)];
    int base = values.position();
    for (int done = 0; done < length; done += block.length) {
      int n = Math.min(block.length, length - done);
      values.get(base + done, block, 0, n);
      int to = at + done;
      for (int i = 0; i < n; i++) {
        target[to + i] += block[i];
      }
    }
  }

  @Override
  public void copyTo(float[] target, int at) {
    values.get(values.position(), target, at, length());
  }

  /** Prints only the number of values: chunks hold up to millions of floats and end up in logs. */
  @Override
  public String toString() {
    return "FramedTensorChunk[jobId=" + jobId
        + ", generation=" + generation
        + ", step=" + step
        + ", round=" + round
        + ", chunk=" + chunk
        + ", offset=" + offset
        + ", values=" + length()
        + (damage == null ? "" : ", damage=" + damage) + "]";
  }
}
