package kaon.protocol;

import java.io.NotSerializableException;
import java.nio.BufferOverflowException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.serialization.ByteBufferSerializer;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * Pekko serializer for {@link TensorChunk}, which carries the bulk of the bytes Kaon puts on the
 * wire.
 *
 * <p>It is a {@link ByteBufferSerializer} so that Artery writes the floats straight into its
 * envelope buffer and reads them straight out of it, without an intermediate {@code byte[]} per
 * chunk. The {@code byte[]} methods serve everything else (local checks, other transports).
 *
 * <p>Format, little-endian because every machine we train on is, which makes the bulk float copy a
 * plain memory copy:
 *
 * <pre>
 * byte          version (1)
 * long          generation
 * long          step
 * int           round
 * int           chunk
 * int           offset
 * int           length, the number of floats
 * int + bytes   jobId as UTF-8, prefixed by its byte count
 * float[length] data
 * </pre>
 *
 * <p>Chunks are never persisted. The version byte exists so that peers of different releases refuse
 * each other's chunks with a clear error instead of misreading them.
 */
public final class TensorChunkSerializer extends SerializerWithStringManifest
    implements ByteBufferSerializer {

  /** Identifier in Pekko's envelope; Kaon's serializers use 7401-7499. */
  public static final int IDENTIFIER = 7401;

  private static final String MANIFEST = "TC";
  private static final byte VERSION = 1;
  private static final int HEADER_BYTES = Byte.BYTES + 2 * Long.BYTES + 5 * Integer.BYTES;

  /**
   * Creates the serializer; Pekko instantiates it reflectively with this signature.
   *
   * @param system unused: the format needs nothing from the actor system
   */
  public TensorChunkSerializer(ExtendedActorSystem system) {}

  /**
   * Returns the exact number of bytes {@code chunk} takes in this format, so that senders can check
   * it against Artery's maximum frame size before sending.
   *
   * @param chunk the chunk to measure
   * @return the serialized size in bytes
   * @throws ArithmeticException if the size does not fit in an int
   */
  public static int serializedSize(TensorChunk chunk) {
    return serializedSize(chunk, utf8(chunk.jobId()).length);
  }

  private static int serializedSize(TensorChunk chunk, int jobIdBytes) {
    int dataBytes = Math.multiplyExact(Float.BYTES, chunk.data().length);
    return Math.addExact(HEADER_BYTES + jobIdBytes, dataBytes);
  }

  /** Returns {@value #IDENTIFIER}. */
  @Override
  public int identifier() {
    return IDENTIFIER;
  }

  /**
   * Returns the manifest of the chunk format; {@link #fromBinary(ByteBuffer, String)} refuses any
   * other.
   *
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk}
   */
  @Override
  public String manifest(Object o) {
    requireChunk(o);
    return MANIFEST;
  }

  /**
   * Serializes into a new array of exactly {@link #serializedSize(TensorChunk)} bytes.
   *
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk}
   */
  @Override
  public byte[] toBinary(Object o) {
    TensorChunk chunk = requireChunk(o);
    byte[] jobId = utf8(chunk.jobId());
    ByteBuffer buffer = ByteBuffer.allocate(serializedSize(chunk, jobId.length));
    write(chunk, jobId, buffer);
    return buffer.array();
  }

  /**
   * Serializes at the buffer's position and advances it by {@link #serializedSize(TensorChunk)};
   * the buffer's byte order is left as it was.
   *
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk}
   * @throws BufferOverflowException if the chunk does not fit in the remaining buffer
   */
  @Override
  public void toBinary(Object o, ByteBuffer buffer) {
    TensorChunk chunk = requireChunk(o);
    byte[] jobId = utf8(chunk.jobId());
    if (buffer.remaining() < serializedSize(chunk, jobId.length)) {
      // Artery reports this exception as an oversized payload; failing before the first byte
      // avoids copying megabytes that would be discarded anyway.
      throw new BufferOverflowException();
    }
    write(chunk, jobId, buffer);
  }

  private static void write(TensorChunk chunk, byte[] jobId, ByteBuffer buffer) {
    ByteOrder callerOrder = buffer.order();
    buffer.order(ByteOrder.LITTLE_ENDIAN);
    try {
      float[] data = chunk.data();
      buffer
          .put(VERSION)
          .putLong(chunk.generation())
          .putLong(chunk.step())
          .putInt(chunk.round())
          .putInt(chunk.chunk())
          .putInt(chunk.offset())
          .putInt(data.length)
          .putInt(jobId.length)
          .put(jobId);
      // A view's bulk put is one memory copy; a putFloat per element would cost a bounds check and
      // a byte-order decision for each of millions of floats.
      buffer.asFloatBuffer().put(data);
      buffer.position(buffer.position() + data.length * Float.BYTES);
    } finally {
      buffer.order(callerOrder);
    }
  }

  /**
   * Reads a chunk written by {@link #toBinary(Object)}.
   *
   * @throws NotSerializableException if the manifest or format version is unknown or the bytes are
   *     truncated or corrupt
   */
  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    return fromBinary(ByteBuffer.wrap(bytes), manifest);
  }

  /**
   * Reads a chunk at the buffer's position and advances past it; the buffer's byte order is left
   * as it was.
   *
   * @throws NotSerializableException if the manifest or format version is unknown or the bytes are
   *     truncated or corrupt
   */
  @Override
  public Object fromBinary(ByteBuffer buffer, String manifest) throws NotSerializableException {
    if (!MANIFEST.equals(manifest)) {
      throw new NotSerializableException(
          "Unknown manifest [" + manifest + "] for TensorChunkSerializer, expected [" + MANIFEST
              + "]; is the sender running a different Kaon release?");
    }
    ByteOrder callerOrder = buffer.order();
    buffer.order(ByteOrder.LITTLE_ENDIAN);
    try {
      return read(buffer);
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      NotSerializableException failure = corrupt(e.toString());
      failure.initCause(e);
      throw failure;
    } finally {
      buffer.order(callerOrder);
    }
  }

  private static TensorChunk read(ByteBuffer buffer) throws NotSerializableException {
    byte version = buffer.get();
    if (version != VERSION) {
      throw new NotSerializableException(
          "TensorChunk format version " + version + " is not supported, this node reads version "
              + VERSION + "; is the sender running a different Kaon release?");
    }
    long generation = buffer.getLong();
    long step = buffer.getLong();
    int round = buffer.getInt();
    int chunk = buffer.getInt();
    int offset = buffer.getInt();
    int length = buffer.getInt();
    int jobIdLength = buffer.getInt();
    // Check lengths against what is there before allocating, so a corrupt header cannot make us
    // allocate gigabytes.
    if (jobIdLength < 0 || jobIdLength > buffer.remaining()) {
      throw corrupt("jobId length " + jobIdLength + " with " + buffer.remaining() + " bytes left");
    }
    byte[] jobId = new byte[jobIdLength];
    buffer.get(jobId);
    if (length < 0 || length > buffer.remaining() / Float.BYTES) {
      throw corrupt("data length " + length + " with " + buffer.remaining() + " bytes left");
    }
    float[] data = new float[length];
    buffer.asFloatBuffer().get(data);
    buffer.position(buffer.position() + length * Float.BYTES);
    return new TensorChunk(
        new String(jobId, StandardCharsets.UTF_8), generation, step, round, chunk, offset, data);
  }

  private static NotSerializableException corrupt(String detail) {
    return new NotSerializableException("Corrupt TensorChunk: " + detail);
  }

  private static TensorChunk requireChunk(Object o) {
    if (o instanceof TensorChunk chunk) {
      return chunk;
    }
    throw new IllegalArgumentException(
        "TensorChunkSerializer cannot serialize " + o.getClass().getName());
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
