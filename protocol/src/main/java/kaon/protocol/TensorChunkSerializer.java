package kaon.protocol;

import java.io.NotSerializableException;
import java.nio.BufferOverflowException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
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
 * <p>It writes {@link TensorChunk}s and {@link TensorChunkView}s (a lent region of a buffer under
 * reduction) in the same format. It reads a {@link TensorChunk}, except from a heap buffer handed
 * over by Artery, where it returns a {@link FramedTensorChunk} that reads the values in place.
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
 * int           CRC32C of data's bytes ({@link ChunkChecksum})
 * </pre>
 *
 * <p>A chunk whose data fails its checksum is still read, with its {@code damage} set: the
 * receiving peer then fails the round with the reason, at once, rather than missing a chunk
 * until its deadline.
 *
 * <p>Chunks are never persisted. The version byte exists so that peers of different releases refuse
 * each other's chunks with a clear error instead of misreading them.
 */
public final class TensorChunkSerializer extends SerializerWithStringManifest
    implements ByteBufferSerializer {

  /** Identifier in Pekko's envelope; Kaon's serializers use 7401-7499. */
  public static final int IDENTIFIER = 7401;

  private static final String MANIFEST = "TC";
  private static final byte VERSION = 2;
  private static final int HEADER_BYTES = Byte.BYTES + 2 * Long.BYTES + 5 * Integer.BYTES;
  private static final int TRAILER_BYTES = Integer.BYTES;

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
    return serializedSize(chunk.data().length, utf8(chunk.jobId()).length);
  }

  private static int serializedSize(int length, int jobIdBytes) {
    int dataBytes = Math.multiplyExact(Float.BYTES, length);
    return Math.addExact(HEADER_BYTES + jobIdBytes + TRAILER_BYTES, dataBytes);
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
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk} or {@link
   *     TensorChunkView}
   */
  @Override
  public String manifest(Object o) {
    if (!(o instanceof TensorChunk) && !(o instanceof TensorChunkView)) {
      throw cannotSerialize(o);
    }
    return MANIFEST;
  }

  /**
   * Serializes into a new array of exactly the serialized size.
   *
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk} or {@link
   *     TensorChunkView}
   */
  @Override
  public byte[] toBinary(Object o) {
    byte[] jobId = utf8(jobIdOf(o));
    ByteBuffer buffer = ByteBuffer.allocate(serializedSize(lengthOf(o), jobId.length));
    write(o, jobId, buffer);
    // A withdrawn view writes no values: the array keeps only what was written.
    return buffer.position() == buffer.capacity() ? buffer.array() : Arrays.copyOf(buffer.array(), buffer.position());
  }

  /**
   * Serializes at the buffer's position and advances it by the serialized size; the buffer's
   * byte order is left as it was.
   *
   * @throws IllegalArgumentException if {@code o} is not a {@link TensorChunk} or {@link
   *     TensorChunkView}
   * @throws BufferOverflowException if the chunk does not fit in the remaining buffer
   */
  @Override
  public void toBinary(Object o, ByteBuffer buffer) {
    byte[] jobId = utf8(jobIdOf(o));
    if (buffer.remaining() < serializedSize(lengthOf(o), jobId.length)) {
      // Artery reports this exception as an oversized payload; failing before the first byte
      // avoids copying megabytes that would be discarded anyway.
      throw new BufferOverflowException();
    }
    write(o, jobId, buffer);
  }

  private static void write(Object o, byte[] jobId, ByteBuffer buffer) {
    ByteOrder callerOrder = buffer.order();
    buffer.order(ByteOrder.LITTLE_ENDIAN);
    int dataStart = buffer.position() + HEADER_BYTES + jobId.length;
    try {
      if (o instanceof TensorChunk chunk) {
        float[] data = chunk.data();
        writeHeader(buffer, chunk.generation(), chunk.step(), chunk.round(), chunk.chunk(), chunk.offset(),
            data.length, jobId);
        putFloats(buffer, data, 0, data.length);
      } else {
        TensorChunkView view = (TensorChunkView) o;
        view.source().write(view.offset(), view.length(), buffer, length -> writeHeader(
            buffer, view.generation(), view.step(), view.round(), view.chunk(), view.offset(), length, jobId));
      }
      int dataEnd = buffer.position();
      buffer.putInt(ChunkChecksum.of(buffer.duplicate().position(dataStart).limit(dataEnd)));
      if (o instanceof TensorChunkView view && view.corrupt() && dataEnd > dataStart) {
        // One bit of one value, after the checksum: what a flaky link would do.
        int at = dataStart + (dataEnd - dataStart) / 2;
        buffer.put(at, (byte) (buffer.get(at) ^ 0x08));
      }
    } finally {
      buffer.order(callerOrder);
    }
  }

  /**
   * Writes {@code values[offset .. offset + length)} at the buffer's position, in its byte order
   * (little-endian while {@link #write} runs), and advances past them.
   */
  static void putFloats(ByteBuffer buffer, float[] values, int offset, int length) {
    // A view's bulk put is one memory copy; a putFloat per element would cost a bounds check and
    // a byte-order decision for each of millions of floats.
    buffer.asFloatBuffer().put(values, offset, length);
    buffer.position(buffer.position() + length * Float.BYTES);
  }

  private static void writeHeader(
      ByteBuffer buffer, long generation, long step, int round, int chunk, int offset, int length, byte[] jobId) {
    buffer
        .put(VERSION)
        .putLong(generation)
        .putLong(step)
        .putInt(round)
        .putInt(chunk)
        .putInt(offset)
        .putInt(length)
        .putInt(jobId.length)
        .put(jobId);
  }

  /**
   * Reads a chunk written by {@link #toBinary(Object)}.
   *
   * @throws NotSerializableException if the manifest or format version is unknown or the bytes are
   *     truncated or corrupt
   */
  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    // A copy: the caller may reuse its array.
    return read(ByteBuffer.wrap(bytes), manifest, false);
  }

  /**
   * Reads a chunk at the buffer's position and advances past it; the buffer's byte order is left
   * as it was. From a heap buffer (Artery's TCP transport, see {@link FramedTensorChunk}) the
   * chunk reads its values in place; from a direct one, which Artery pools and reuses, it gets a
   * copy.
   *
   * @throws NotSerializableException if the manifest or format version is unknown or the bytes are
   *     truncated or corrupt
   */
  @Override
  public Object fromBinary(ByteBuffer buffer, String manifest) throws NotSerializableException {
    return read(buffer, manifest, buffer.hasArray());
  }

  private static Object read(ByteBuffer buffer, String manifest, boolean inPlace)
      throws NotSerializableException {
    if (!MANIFEST.equals(manifest)) {
      throw new NotSerializableException(
          "Unknown manifest [" + manifest + "] for TensorChunkSerializer, expected [" + MANIFEST
              + "]; is the sender running a different Kaon release?");
    }
    ByteOrder callerOrder = buffer.order();
    buffer.order(ByteOrder.LITTLE_ENDIAN);
    try {
      return read(buffer, inPlace);
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      NotSerializableException failure = corrupt(e.toString());
      failure.initCause(e);
      throw failure;
    } finally {
      buffer.order(callerOrder);
    }
  }

  private static InboundChunk read(ByteBuffer buffer, boolean inPlace) throws NotSerializableException {
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
    String job = new String(jobId, StandardCharsets.UTF_8);
    int dataBytes = length * Float.BYTES;
    if (buffer.remaining() < dataBytes + TRAILER_BYTES) {
      throw corrupt("no checksum after " + length + " floats");
    }
    int dataStart = buffer.position();
    String damage = ChunkChecksum.damage(buffer.getInt(dataStart + dataBytes),
        ChunkChecksum.of(buffer.duplicate().position(dataStart).limit(dataStart + dataBytes)));
    if (inPlace) {
      FloatBuffer values = buffer.slice(dataStart, dataBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
      buffer.position(dataStart + dataBytes + TRAILER_BYTES);
      return new FramedTensorChunk(job, generation, step, round, chunk, offset, values, damage);
    }
    float[] data = new float[length];
    buffer.asFloatBuffer().get(data);
    buffer.position(dataStart + dataBytes + TRAILER_BYTES);
    return new TensorChunk(job, generation, step, round, chunk, offset, data, damage);
  }

  private static NotSerializableException corrupt(String detail) {
    return new NotSerializableException("Corrupt TensorChunk: " + detail);
  }

  private static String jobIdOf(Object o) {
    if (o instanceof TensorChunk chunk) {
      return chunk.jobId();
    }
    if (o instanceof TensorChunkView view) {
      return view.jobId();
    }
    throw cannotSerialize(o);
  }

  private static int lengthOf(Object o) {
    return o instanceof TensorChunk chunk ? chunk.data().length : ((TensorChunkView) o).length();
  }

  private static IllegalArgumentException cannotSerialize(Object o) {
    return new IllegalArgumentException("TensorChunkSerializer cannot serialize " + o.getClass().getName());
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
