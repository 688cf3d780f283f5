package kaon.protocol;

/**
 * A chunk of a ring all-reduce as the receiving peer sees it, whichever way it came: an owned
 * array ({@link TensorChunk}: from a peer in the same JVM, or from the tensor link) or a view of
 * the frame Artery received ({@link FramedTensorChunk}). The peer only adds a chunk into its
 * buffer or copies it there, so these two operations are all it needs, and each carrier does
 * them without first making a {@code float[]} of its own.
 */
public sealed interface InboundChunk extends RingMessage permits TensorChunk, FramedTensorChunk {

  /** The training job this chunk belongs to. */
  String jobId();

  /** Fencing token of the job membership that sent it. */
  long generation();

  /** Training step whose values it carries. */
  long step();

  /** Ring round, reduce-scatter rounds first. */
  int round();

  /** Index of the chunk inside its segment. */
  int chunk();

  /** Index in the flat buffer of the chunk's first value. */
  int offset();

  /**
   * Number of values. A chunk of none is one its sender withdrew (see {@link TensorChunkView}):
   * its values were no longer the round's when Artery came to write them.
   */
  int length();

  /**
   * Null when the values are those the sender sent; else why not (they failed their {@link
   * ChunkChecksum} on the wire). A damaged chunk must not be added: the receiver fails the round.
   * Chunks between peers of one JVM cross no wire and are never damaged.
   */
  String damage();

  /** Adds the values to {@code target[at .. at + length())}. */
  void addTo(float[] target, int at);

  /** Copies the values to {@code target[at .. at + length())}. */
  void copyTo(float[] target, int at);
}
