package kaon.protocol;

import java.util.Arrays;
import java.util.Objects;

/**
 * One chunk of a flat float buffer (gradients or parameters) travelling between two peers of a ring
 * all-reduce.
 *
 * <p>The ring splits the flat buffer of {@code W} workers into {@code W} segments; a segment may be
 * cut into several chunks so that each stays below Artery's frame size. Receivers fence on
 * {@code (jobId, generation)} and match chunks to their slot by {@code (step, round, chunk)}.
 *
 * <p>The array is not copied: the sender hands it over and must not write to it afterwards. Copying
 * would double the memory traffic of the hottest path in training.
 *
 * @param jobId the training job this chunk belongs to
 * @param generation fencing token of the job membership; chunks of an older generation are stale
 * @param step training step whose gradients (or parameters) the chunk carries
 * @param round ring round, {@code 0 .. 2(W-1)-1}: reduce-scatter rounds first, then all-gather
 * @param chunk index of this chunk inside its segment
 * @param offset index in the flat buffer of {@code data[0]}
 * @param data the values, owned by the chunk from construction on
 * @param damage null, or why the values are not those sent (they failed their {@link
 *     ChunkChecksum} on the way); only a receiver sets it
 */
public record TensorChunk(
    String jobId, long generation, long step, int round, int chunk, int offset, float[] data, String damage)
    implements InboundChunk {

  /** An intact chunk, as a sender makes it. */
  public TensorChunk(String jobId, long generation, long step, int round, int chunk, int offset, float[] data) {
    this(jobId, generation, step, round, chunk, offset, data, null);
  }

  /**
   * Validates the fields.
   *
   * @throws NullPointerException if {@code jobId} or {@code data} is null
   * @throws IllegalArgumentException if a number is negative
   */
  public TensorChunk {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(data, "data");
    requireNonNegative("generation", generation);
    requireNonNegative("step", step);
    requireNonNegative("round", round);
    requireNonNegative("chunk", chunk);
    requireNonNegative("offset", offset);
  }

  /** The number of values, {@code data.length}. */
  @Override
  public int length() {
    return data.length;
  }

  @Override
  public void addTo(float[] target, int at) {
    for (int i = 0; i < data.length; i++) {
      target[at + i] += data[i];
    }
  }

  @Override
  public void copyTo(float[] target, int at) {
    System.arraycopy(data, 0, target, at, data.length);
  }

  private static void requireNonNegative(String name, long value) {
    if (value < 0) {
      throw new IllegalArgumentException(name + " must be >= 0, was " + value);
    }
  }

  /**
   * Compares all fields, {@code data} by content ({@link Arrays#equals(float[], float[])}, so NaN
   * equals NaN), because a record would compare the array by reference.
   */
  @Override
  public boolean equals(Object other) {
    return other instanceof TensorChunk that
        && generation == that.generation
        && step == that.step
        && round == that.round
        && chunk == that.chunk
        && offset == that.offset
        && jobId.equals(that.jobId)
        && Objects.equals(damage, that.damage)
        && Arrays.equals(data, that.data);
  }

  /** Hashes all fields, {@code data} by content, consistent with {@link #equals(Object)}. */
  @Override
  public int hashCode() {
    return 31 * Objects.hash(jobId, generation, step, round, chunk, offset) + Arrays.hashCode(data);
  }

  /** Prints only the length of {@code data}: chunks hold up to millions of floats and end up in logs. */
  @Override
  public String toString() {
    return "TensorChunk[jobId=" + jobId
        + ", generation=" + generation
        + ", step=" + step
        + ", round=" + round
        + ", chunk=" + chunk
        + ", offset=" + offset
        + ", data=float[" + data.length + "]"
        + (damage == null ? "" : ", damage=" + damage) + "]";
  }
}
