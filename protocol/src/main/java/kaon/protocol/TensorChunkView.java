package kaon.protocol;

import java.util.Objects;

/**
 * A chunk to send over Artery whose values are a region of a buffer under reduction, lent rather
 * than copied: {@link TensorChunkSerializer} writes them straight from the buffer into Artery's
 * envelope. The receiver gets an ordinary chunk, in the same format as a {@link TensorChunk}.
 *
 * <p>The copy a {@link TensorChunk} needs costs a megabyte array per chunk, zeroed by the JVM
 * before the copy overwrites it: about 7% of each JVM's CPU time in bench/allreduce over Artery. The price is {@link LentBuffer}'s bookkeeping: the reduction may reply only
 * once Artery has written every region it lent. A view must only be sent to another JVM: a local
 * recipient would get the region itself, while it changes.
 *
 * @param jobId the training job this chunk belongs to
 * @param generation fencing token of the job membership
 * @param step training step whose values the chunk carries
 * @param round ring round
 * @param chunk index of this chunk inside its segment
 * @param offset index in the flat buffer of the first value, also where the values are read
 * @param length number of values
 * @param source the buffer the region belongs to
 * @param corrupt damage the values on the wire, after their checksum (a fault the chaos tooling
 *     injects, so that receivers show they catch it); false in normal operation
 */
public record TensorChunkView(
    String jobId, long generation, long step, int round, int chunk, int offset, int length, LentBuffer source,
    boolean corrupt)
    implements RingMessage {

  /** A view sent intact. */
  public TensorChunkView(String jobId, long generation, long step, int round, int chunk, int offset, int length,
      LentBuffer source) {
    this(jobId, generation, step, round, chunk, offset, length, source, false);
  }

  /** Checks that the fields are present. */
  public TensorChunkView {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(source, "source");
  }
}
