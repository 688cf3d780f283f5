package kaon.protocol;

import java.io.EOFException;
import java.io.IOException;
import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Objects;
import java.util.function.IntFunction;
import java.util.zip.CRC32C;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Byte format of the tensor link: a dedicated TCP connection from one all-reduce peer to its
 * right ring neighbour on another node, carrying {@link TensorChunk}s outside Artery.
 *
 * <p>A connection serves one job generation and one receiving peer, so the handshake names them
 * once and the frames after it carry only what changes from chunk to chunk. All numbers are
 * little-endian, like {@link TensorChunkSerializer}'s, so the floats move with one bulk copy on
 * every machine we train on.
 *
 * <p>The listener admits a connection only if it proves that it holds the receiving peer's key:
 * 32 random bytes the listener drew when the peer registered, handed to the left neighbour in an
 * Artery message (mutually authenticated TLS on VMs) and never written to this link. The listener
 * challenges every handshake with a fresh nonce, and the connecting side answers with an
 * HMAC-SHA256 under the key over the nonce and the handshake's bytes. Someone who can reach the
 * port, or who saw an earlier connection's bytes, thus cannot open a connection into a ring.
 *
 * <pre>
 * handshake, connecting side to listening side:
 *   int           magic 0x4B544C4B ("KTLK")
 *   byte          version (3)
 *   long          target: the receiving peer's id in the listener's registry
 *   long          generation
 *   int + bytes   jobId as UTF-8, prefixed by its byte count
 * reply, listening side to connecting side:
 *   byte          CHALLENGE, UNKNOWN_TARGET or UNSUPPORTED_VERSION
 *   byte[32]      nonce, after CHALLENGE only
 * proof, connecting side to listening side:
 *   byte[32]      HMAC-SHA256(key, PROOF_CONTEXT | nonce | the handshake's bytes)
 * reply, listening side to connecting side:
 *   byte          ACCEPTED or UNAUTHENTICATED
 * then frames, connecting side to listening side only, until either side closes:
 *   byte          frame tag 'C'
 *   long          step
 *   int           round
 *   int           chunk
 *   int           offset
 *   int           length, the number of floats
 *   float[length] data
 *   int           CRC32C of data's bytes ({@link ChunkChecksum})
 * </pre>
 *
 * <p>The tag byte costs nothing per megabyte and turns a stream that lost its framing into a
 * clear error instead of garbage sums. Values that fail their checksum are still read into a
 * chunk, with its {@code damage} set, for the receiving peer to fail the round with the reason.
 */
public final class TensorLinkFormat {

  /** First bytes of every handshake; anything else is not a tensor link. */
  public static final int MAGIC = 0x4B544C4B;

  /** Format version; peers of different versions refuse each other in the handshake. */
  public static final byte VERSION = 3;

  /** Reply: frames may follow. */
  public static final byte ACCEPTED = 1;

  /** Reply: no peer with that id is registered (it stopped, or never asked for a link). */
  public static final byte UNKNOWN_TARGET = 2;

  /** Reply: the listener speaks another version of this format. */
  public static final byte UNSUPPORTED_VERSION = 3;

  /** Reply: a nonce follows, and the connecting side must prove it holds the peer's key. */
  public static final byte CHALLENGE = 4;

  /** Reply: the proof was wrong; the connecting side does not hold the peer's key. */
  public static final byte UNAUTHENTICATED = 5;

  /** Bytes of a peer's key, of a challenge's nonce and of a proof (HMAC-SHA256's output). */
  public static final int SECRET_BYTES = 32;

  /**
   * What a proof covers before the nonce: a proof made with the same key for anything else can
   * never pass as one of these.
   */
  private static final byte[] PROOF_CONTEXT = "kaon tensor link proof v2".getBytes(StandardCharsets.US_ASCII);

  /**
   * Largest chunk a reader accepts. Far above any sensible {@code kaon.allreduce.chunk-bytes}, and
   * low enough that a corrupt length cannot make the reader allocate gigabytes.
   */
  public static final int MAX_CHUNK_FLOATS = 64 * 1024 * 1024;

  /** Smallest buffer a {@link FrameWriter} or {@link FrameReader} works with. */
  public static final int MIN_BUFFER_BYTES = 64;

  private static final byte FRAME_TAG = 'C';
  private static final int FRAME_HEADER_BYTES = Byte.BYTES + Long.BYTES + 4 * Integer.BYTES;
  private static final int HANDSHAKE_FIXED_BYTES = Integer.BYTES + Byte.BYTES + 2 * Long.BYTES + Integer.BYTES;
  private static final int MAX_JOB_ID_BYTES = 64 * 1024;

  private TensorLinkFormat() {}

  /**
   * What a connection carries, named once when it opens.
   *
   * @param target id of the receiving peer in the listening node's registry
   * @param jobId job of every chunk on this connection
   * @param generation generation of every chunk on this connection
   */
  public record Handshake(long target, String jobId, long generation) {

    /** @throws NullPointerException if {@code jobId} is null */
    public Handshake {
      Objects.requireNonNull(jobId, "jobId");
    }
  }

  /**
   * Writes {@code handshake} and the format's magic and version.
   *
   * @throws IOException if the channel fails
   */
  public static void writeHandshake(Handshake handshake, WritableByteChannel channel) throws IOException {
    writeFully(ByteBuffer.wrap(encode(handshake)), channel);
  }

  private static byte[] encode(Handshake handshake) {
    byte[] jobId = handshake.jobId().getBytes(StandardCharsets.UTF_8);
    ByteBuffer buffer = ByteBuffer.allocate(HANDSHAKE_FIXED_BYTES + jobId.length).order(ByteOrder.LITTLE_ENDIAN);
    buffer.putInt(MAGIC).put(VERSION).putLong(handshake.target()).putLong(handshake.generation())
        .putInt(jobId.length).put(jobId);
    return buffer.array();
  }

  /**
   * Reads a handshake written by {@link #writeHandshake}.
   *
   * @throws ProtocolException if the bytes are not a tensor link handshake
   * @throws UnsupportedVersionException if they are one of another version
   * @throws EOFException if the stream ends inside the handshake
   */
  public static Handshake readHandshake(ReadableByteChannel channel) throws IOException {
    ByteBuffer fixed = readExactly(channel, HANDSHAKE_FIXED_BYTES);
    int magic = fixed.getInt();
    if (magic != MAGIC) {
      throw new ProtocolException("not a tensor link: magic 0x" + Integer.toHexString(magic));
    }
    byte version = fixed.get();
    if (version != VERSION) {
      throw new UnsupportedVersionException(version);
    }
    long target = fixed.getLong();
    long generation = fixed.getLong();
    int jobIdBytes = fixed.getInt();
    if (jobIdBytes < 0 || jobIdBytes > MAX_JOB_ID_BYTES) {
      throw new ProtocolException("corrupt handshake: jobId of " + jobIdBytes + " bytes");
    }
    ByteBuffer jobId = readExactly(channel, jobIdBytes);
    return new Handshake(target, StandardCharsets.UTF_8.decode(jobId).toString(), generation);
  }

  /** Writes the listener's answer to a handshake. */
  public static void writeReply(byte reply, WritableByteChannel channel) throws IOException {
    writeFully(ByteBuffer.wrap(new byte[] {reply}), channel);
  }

  /** Reads the listener's answer to a handshake or to a proof. */
  public static byte readReply(ReadableByteChannel channel) throws IOException {
    return readExactly(channel, 1).get();
  }

  /** Writes {@link #CHALLENGE} and its nonce of {@value #SECRET_BYTES} bytes. */
  public static void writeChallenge(byte[] nonce, WritableByteChannel channel) throws IOException {
    requireSecretLength(nonce, "nonce");
    writeFully(ByteBuffer.allocate(1 + SECRET_BYTES).put(CHALLENGE).put(nonce).flip(), channel);
  }

  /** Reads the nonce that follows a {@link #CHALLENGE} reply, or a proof; both are as long. */
  public static byte[] readSecretSized(ReadableByteChannel channel) throws IOException {
    return readExactly(channel, SECRET_BYTES).array();
  }

  /** Writes the answer to a challenge, made by {@link #proof}. */
  public static void writeProof(byte[] proof, WritableByteChannel channel) throws IOException {
    requireSecretLength(proof, "proof");
    writeFully(ByteBuffer.wrap(proof), channel);
  }

  /**
   * The answer to a challenge: HMAC-SHA256 under the peer's {@code key} over the nonce and the
   * handshake, so a proof admits only this handshake (target, job, generation) after this nonce.
   *
   * @throws IllegalArgumentException if the key or the nonce is not {@value #SECRET_BYTES} bytes
   */
  public static byte[] proof(byte[] key, byte[] nonce, Handshake handshake) {
    requireSecretLength(key, "key");
    requireSecretLength(nonce, "nonce");
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      mac.update(PROOF_CONTEXT);
      mac.update(nonce);
      return mac.doFinal(encode(handshake));
    } catch (GeneralSecurityException e) {
      // Every Java runtime ships HmacSHA256; without it no link could be trusted.
      throw new IllegalStateException("HmacSHA256 is not available", e);
    }
  }

  /** Whether {@code proof} answers the challenge {@code nonce} for {@code handshake} under {@code key}. */
  public static boolean verify(byte[] key, byte[] nonce, Handshake handshake, byte[] proof) {
    // In constant time: how long a wrong proof takes to refuse must not tell how much of it was right.
    return MessageDigest.isEqual(proof(key, nonce, handshake), proof);
  }

  private static void requireSecretLength(byte[] bytes, String what) {
    if (bytes == null || bytes.length != SECRET_BYTES) {
      throw new IllegalArgumentException(
          "a tensor link " + what + " must be " + SECRET_BYTES + " bytes, was " + (bytes == null ? "null" : bytes.length));
    }
  }

  /** A handshake of another format version. */
  public static final class UnsupportedVersionException extends ProtocolException {

    /** @param version the version the other side speaks */
    public UnsupportedVersionException(byte version) {
      super("tensor link version " + version + " is not supported, this node speaks version " + VERSION
          + "; is the other node running a different Kaon release?");
    }
  }

  /**
   * Encodes chunks into frames through one reusable direct buffer: the floats go from the chunk's
   * array into the buffer with one bulk copy and from there to the socket, with no array in
   * between. Not thread-safe; one writer per connection.
   */
  public static final class FrameWriter {

    private final WritableByteChannel channel;
    private final Handshake handshake;
    private final ByteBuffer buffer;
    private final CRC32C crc = new CRC32C();

    /**
     * @param channel where frames go, usually a blocking socket channel
     * @param handshake what the connection was opened for; every chunk must match it
     * @param bufferBytes size of the direct buffer, at least {@value #MIN_BUFFER_BYTES}
     */
    public FrameWriter(WritableByteChannel channel, Handshake handshake, int bufferBytes) {
      this.channel = Objects.requireNonNull(channel, "channel");
      this.handshake = Objects.requireNonNull(handshake, "handshake");
      this.buffer = ByteBuffer.allocateDirect(Math.max(MIN_BUFFER_BYTES, bufferBytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Encodes {@code chunk}; the bytes go out whenever the buffer fills, the rest on {@link
     * #flush()}. Several small chunks thus share one write.
     *
     * @throws IllegalArgumentException if the chunk belongs to another job or generation than
     *     the handshake: the receiver labels every frame with the handshake's, so sending it
     *     would move a chunk across the generation fence
     * @throws IOException if the channel fails
     */
    public void write(TensorChunk chunk) throws IOException {
      if (chunk.generation() != handshake.generation() || !chunk.jobId().equals(handshake.jobId())) {
        throw new IllegalArgumentException(
            chunk + " does not belong to this link's job " + handshake.jobId() + " generation " + handshake.generation());
      }
      write(chunk.step(), chunk.round(), chunk.chunk(), chunk.offset(), chunk.data(), 0, chunk.data().length);
    }

    /**
     * Encodes the chunk of the handshake's job and generation whose floats are {@code
     * source[from .. from + length)}, read from there during this call. A sender can thus cut
     * chunks out of its flat buffer without copying them into arrays of their own first.
     *
     * @throws IOException if the channel fails
     */
    public void write(long step, int round, int chunk, int offset, float[] source, int from, int length)
        throws IOException {
      write(step, round, chunk, offset, source, from, length, false);
    }

    /**
     * As {@link #write(long, int, int, int, float[], int, int)}; with {@code corrupt}, one bit of
     * the values is flipped after their checksum was taken (a fault the chaos tooling injects,
     * so that the receiver shows it catches it).
     */
    public void write(long step, int round, int chunk, int offset, float[] source, int from, int length, boolean corrupt)
        throws IOException {
      if (buffer.remaining() < FRAME_HEADER_BYTES) {
        drain();
      }
      buffer.put(FRAME_TAG).putLong(step).putInt(round).putInt(chunk).putInt(offset).putInt(length);
      crc.reset();
      int done = 0;
      while (done < length) {
        int room = buffer.remaining() / Float.BYTES;
        if (room == 0) {
          drain();
          continue;
        }
        int n = Math.min(room, length - done);
        // A view's bulk put is one memory copy, in the buffer's little-endian order.
        int start = buffer.position();
        buffer.asFloatBuffer().put(source, from + done, n);
        buffer.position(start + n * Float.BYTES);
        crc.update(buffer.duplicate().position(start).limit(buffer.position()));
        if (corrupt && done == 0) {
          buffer.put(start, (byte) (buffer.get(start) ^ 0x08));
        }
        done += n;
      }
      if (buffer.remaining() < Integer.BYTES) {
        drain();
      }
      buffer.putInt((int) crc.getValue());
    }

    /** Writes out everything encoded so far. */
    public void flush() throws IOException {
      drain();
    }

    private void drain() throws IOException {
      buffer.flip();
      writeFully(buffer, channel);
      buffer.clear();
    }
  }

  /**
   * Decodes frames into {@link TensorChunk}s labelled with the handshake's job and generation,
   * reading through one reusable direct buffer. Not thread-safe; one reader per connection.
   */
  public static final class FrameReader {

    private final ReadableByteChannel channel;
    private final Handshake handshake;
    private final ByteBuffer buffer;
    private final IntFunction<float[]> arrays;
    private final CRC32C crc = new CRC32C();

    /**
     * A reader that allocates a new array for every chunk.
     *
     * @param channel where frames come from, usually a blocking socket channel
     * @param handshake what the connection was opened for
     * @param bufferBytes size of the direct buffer, at least {@value #MIN_BUFFER_BYTES}
     */
    public FrameReader(ReadableByteChannel channel, Handshake handshake, int bufferBytes) {
      this(channel, handshake, bufferBytes, float[]::new);
    }

    /**
     * A reader that takes each chunk's array from {@code arrays}, which may hand out used ones:
     * the reader overwrites every element. Recycling them saves the JVM zeroing a fresh
     * megabyte for every chunk.
     *
     * @param arrays gives an array of exactly the requested length
     */
    public FrameReader(ReadableByteChannel channel, Handshake handshake, int bufferBytes, IntFunction<float[]> arrays) {
      this.channel = Objects.requireNonNull(channel, "channel");
      this.handshake = Objects.requireNonNull(handshake, "handshake");
      this.arrays = Objects.requireNonNull(arrays, "arrays");
      this.buffer = ByteBuffer.allocateDirect(Math.max(MIN_BUFFER_BYTES, bufferBytes)).order(ByteOrder.LITTLE_ENDIAN);
      buffer.flip();
    }

    /**
     * Reads the next chunk.
     *
     * @return the chunk, or null if the stream ended cleanly between two frames
     * @throws EOFException if the stream ends inside a frame
     * @throws ProtocolException if the bytes are not a frame
     * @throws IOException if the channel fails
     */
    public TensorChunk read() throws IOException {
      if (!buffer.hasRemaining() && !fill(1, true)) {
        return null;
      }
      if (buffer.remaining() < FRAME_HEADER_BYTES) {
        fill(FRAME_HEADER_BYTES, false);
      }
      byte tag = buffer.get();
      if (tag != FRAME_TAG) {
        throw new ProtocolException("corrupt tensor link frame: tag " + tag);
      }
      long step = buffer.getLong();
      int round = buffer.getInt();
      int chunk = buffer.getInt();
      int offset = buffer.getInt();
      int length = buffer.getInt();
      if (length < 0 || length > MAX_CHUNK_FLOATS) {
        throw new ProtocolException("corrupt tensor link frame: " + length + " floats");
      }
      float[] data = arrays.apply(length);
      if (data.length != length) {
        throw new IllegalStateException("array supplier gave " + data.length + " floats for " + length);
      }
      crc.reset();
      int done = 0;
      while (done < length) {
        if (buffer.remaining() < Float.BYTES) {
          fill(Float.BYTES, false);
        }
        int n = Math.min(buffer.remaining() / Float.BYTES, length - done);
        int start = buffer.position();
        buffer.asFloatBuffer().get(data, done, n);
        buffer.position(start + n * Float.BYTES);
        crc.update(buffer.duplicate().position(start).limit(buffer.position()));
        done += n;
      }
      if (buffer.remaining() < Integer.BYTES) {
        fill(Integer.BYTES, false);
      }
      String damage = ChunkChecksum.damage(buffer.getInt(), (int) crc.getValue());
      try {
        return new TensorChunk(handshake.jobId(), handshake.generation(), step, round, chunk, offset, data, damage);
      } catch (IllegalArgumentException e) {
        throw (ProtocolException) new ProtocolException("corrupt tensor link frame: " + e.getMessage()).initCause(e);
      }
    }

    /**
     * Reads until at least {@code bytes} are buffered, as many as the channel gives in each read.
     * Callers only come here when fewer are left, so the compaction moves a few bytes at most.
     *
     * @return false if the stream ended before the first byte and {@code endAllowed}
     */
    private boolean fill(int bytes, boolean endAllowed) throws IOException {
      buffer.compact();
      try {
        while (buffer.position() < bytes) {
          if (channel.read(buffer) < 0) {
            if (endAllowed && buffer.position() == 0) {
              return false;
            }
            throw new EOFException("tensor link closed inside a frame");
          }
        }
        return true;
      } finally {
        buffer.flip();
      }
    }
  }

  private static void writeFully(ByteBuffer buffer, WritableByteChannel channel) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }

  private static ByteBuffer readExactly(ReadableByteChannel channel, int bytes) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    while (buffer.hasRemaining()) {
      if (channel.read(buffer) < 0) {
        throw new EOFException("tensor link closed during the handshake");
      }
    }
    return buffer.flip();
  }
}
