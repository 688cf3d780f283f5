package kaon.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class TensorLinkFormatTest {

  private static final TensorLinkFormat.Handshake HANDSHAKE = new TensorLinkFormat.Handshake(7, "job-ü", 3);

  @ParameterizedTest(name = "writer buffer {0} B, reader buffer {1} B, reads of at most {2} B")
  @CsvSource({"64, 64, 1", "100, 64, 7", "64, 1000, 13", "1048576, 1048576, 65536", "4096, 96, 4093"})
  void chunksSurviveAnySplitOfTheStream(int writerBytes, int readerBytes, int readBytes) throws IOException {
    SplittableRandom random = new SplittableRandom(writerBytes + readerBytes);
    List<TensorChunk> sent = new ArrayList<>();
    for (int length : new int[] {0, 1, 5, 1000, 10_007}) {
      float[] data = new float[length];
      for (int i = 0; i < length; i++) {
        data[i] = (float) random.nextDouble(-1e6, 1e6);
      }
      if (length > 0) {
        data[length / 2] = Float.NaN; // goes through as bits, like every other value
      }
      sent.add(new TensorChunk("job-ü", 3, 17 + length, length % 4, length % 3, length * 2, data));
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.FrameWriter writer =
        new TensorLinkFormat.FrameWriter(Channels.newChannel(bytes), HANDSHAKE, writerBytes);
    for (TensorChunk chunk : sent) {
      writer.write(chunk);
    }
    writer.flush();
    TensorLinkFormat.FrameReader reader =
        new TensorLinkFormat.FrameReader(trickle(bytes.toByteArray(), readBytes), HANDSHAKE, readerBytes);
    for (TensorChunk chunk : sent) {
      assertEquals(chunk, reader.read());
    }
    assertNull(reader.read(), "a clean end between frames");
  }

  @ParameterizedTest(name = "buffers of {0} B")
  @CsvSource({"64", "4096"})
  void aFrameDamagedAfterItsChecksumArrivesMarkedDamagedAndTheNextIntact(int bufferBytes) throws IOException {
    float[] flat = new float[3000];
    for (int i = 0; i < flat.length; i++) {
      flat[i] = i * 0.25f;
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.FrameWriter writer =
        new TensorLinkFormat.FrameWriter(Channels.newChannel(bytes), HANDSHAKE, bufferBytes);
    writer.write(4, 1, 0, 0, flat, 0, flat.length, true);
    writer.write(4, 1, 1, 0, flat, 0, flat.length, false);
    writer.flush();
    TensorLinkFormat.FrameReader reader =
        new TensorLinkFormat.FrameReader(trickle(bytes.toByteArray(), 999), HANDSHAKE, bufferBytes);

    TensorChunk damaged = reader.read();
    TensorChunk intact = reader.read();

    assertTrue(damaged.damage() != null && damaged.damage().contains("checksum"), String.valueOf(damaged.damage()));
    assertNull(intact.damage());
    assertArrayEquals(flat, intact.data());
  }

  @Test
  void aChunkCutOutOfABiggerBufferAndReadIntoARecycledArray() throws IOException {
    float[] flat = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.FrameWriter writer = new TensorLinkFormat.FrameWriter(Channels.newChannel(bytes), HANDSHAKE, 64);
    writer.write(4, 1, 0, 3, flat, 3, 5);
    writer.flush();
    float[] used = {-1, -1, -1, -1, -1};
    TensorLinkFormat.FrameReader reader =
        new TensorLinkFormat.FrameReader(trickle(bytes.toByteArray(), 11), HANDSHAKE, 64, length -> used);
    TensorChunk chunk = reader.read();
    assertEquals(new TensorChunk("job-ü", 3, 4, 1, 0, 3, new float[] {3, 4, 5, 6, 7}), chunk);
    assertTrue(chunk.data() == used, "the supplied array carries the chunk");
  }

  @Test
  void handshakeRoundTripsAndNamesTheConnection() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.writeHandshake(HANDSHAKE, Channels.newChannel(bytes));
    TensorLinkFormat.writeReply(TensorLinkFormat.ACCEPTED, Channels.newChannel(bytes));
    ReadableByteChannel in = trickle(bytes.toByteArray(), 3);
    assertEquals(HANDSHAKE, TensorLinkFormat.readHandshake(in));
    assertEquals(TensorLinkFormat.ACCEPTED, TensorLinkFormat.readReply(in));
  }

  @Test
  void aChallengeAndItsProofRoundTrip() throws IOException {
    byte[] key = new byte[TensorLinkFormat.SECRET_BYTES];
    byte[] nonce = new byte[TensorLinkFormat.SECRET_BYTES];
    new SplittableRandom(5).nextBytes(key);
    new SplittableRandom(6).nextBytes(nonce);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.writeChallenge(nonce, Channels.newChannel(bytes));
    TensorLinkFormat.writeProof(TensorLinkFormat.proof(key, nonce, HANDSHAKE), Channels.newChannel(bytes));
    ReadableByteChannel in = trickle(bytes.toByteArray(), 5);
    assertEquals(TensorLinkFormat.CHALLENGE, TensorLinkFormat.readReply(in));
    assertArrayEquals(nonce, TensorLinkFormat.readSecretSized(in));
    assertTrue(TensorLinkFormat.verify(key, nonce, HANDSHAKE, TensorLinkFormat.readSecretSized(in)));
  }

  @Test
  void aProofAdmitsOnlyItsKeyNonceAndHandshake() {
    byte[] key = new byte[TensorLinkFormat.SECRET_BYTES];
    byte[] nonce = new byte[TensorLinkFormat.SECRET_BYTES];
    new SplittableRandom(1).nextBytes(key);
    new SplittableRandom(2).nextBytes(nonce);
    byte[] proof = TensorLinkFormat.proof(key, nonce, HANDSHAKE);
    assertTrue(TensorLinkFormat.verify(key, nonce, HANDSHAKE, proof));
    byte[] otherKey = key.clone();
    otherKey[31] ^= 1;
    byte[] otherNonce = nonce.clone();
    otherNonce[0] ^= 1;
    assertFalse(TensorLinkFormat.verify(otherKey, nonce, HANDSHAKE, proof), "another key");
    assertFalse(TensorLinkFormat.verify(key, otherNonce, HANDSHAKE, proof), "another challenge");
    assertFalse(TensorLinkFormat.verify(key, nonce, new TensorLinkFormat.Handshake(7, "job-ü", 4), proof), "another generation");
    assertFalse(TensorLinkFormat.verify(key, nonce, new TensorLinkFormat.Handshake(8, "job-ü", 3), proof), "another peer");
    assertFalse(TensorLinkFormat.verify(key, nonce, HANDSHAKE, Arrays.copyOf(proof, 31)), "a short proof");
    assertThrows(IllegalArgumentException.class, () -> TensorLinkFormat.proof(new byte[16], nonce, HANDSHAKE));
  }

  @Test
  void refusesSomethingThatIsNotATensorLink() {
    byte[] http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes();
    assertThrows(ProtocolException.class, () -> TensorLinkFormat.readHandshake(trickle(http, 100)));
  }

  @Test
  void refusesAnotherVersionByName() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.writeHandshake(HANDSHAKE, Channels.newChannel(bytes));
    byte[] raw = bytes.toByteArray();
    raw[4] = 9;
    ProtocolException e = assertThrows(TensorLinkFormat.UnsupportedVersionException.class,
        () -> TensorLinkFormat.readHandshake(trickle(raw, 100)));
    assertTrue(e.getMessage().contains("version 9"), e.getMessage());
  }

  @Test
  void aChunkOfAnotherGenerationNeverGoesOnTheLink() {
    TensorLinkFormat.FrameWriter writer =
        new TensorLinkFormat.FrameWriter(Channels.newChannel(new ByteArrayOutputStream()), HANDSHAKE, 64);
    assertThrows(IllegalArgumentException.class,
        () -> writer.write(new TensorChunk("job-ü", 2, 0, 0, 0, 0, new float[1])));
    assertThrows(IllegalArgumentException.class,
        () -> writer.write(new TensorChunk("other", 3, 0, 0, 0, 0, new float[1])));
  }

  @Test
  void aStreamCutInsideAFrameIsAnErrorNotAnEnd() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TensorLinkFormat.FrameWriter writer = new TensorLinkFormat.FrameWriter(Channels.newChannel(bytes), HANDSHAKE, 64);
    writer.write(new TensorChunk("job-ü", 3, 0, 0, 0, 0, new float[100]));
    writer.flush();
    byte[] cut = Arrays.copyOf(bytes.toByteArray(), bytes.size() - 5);
    TensorLinkFormat.FrameReader reader = new TensorLinkFormat.FrameReader(trickle(cut, 64), HANDSHAKE, 64);
    assertThrows(EOFException.class, reader::read);
  }

  @Test
  void aCorruptLengthIsRefusedBeforeAllocating() {
    ByteBuffer frame = ByteBuffer.allocate(25).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    frame.put((byte) 'C').putLong(0).putInt(0).putInt(0).putInt(0).putInt(Integer.MAX_VALUE);
    TensorLinkFormat.FrameReader reader = new TensorLinkFormat.FrameReader(trickle(frame.array(), 64), HANDSHAKE, 64);
    assertThrows(ProtocolException.class, reader::read);
  }

  /** A channel over {@code bytes} that hands out at most {@code max} bytes per read, as TCP may. */
  private static ReadableByteChannel trickle(byte[] bytes, int max) {
    ReadableByteChannel all = Channels.newChannel(new ByteArrayInputStream(bytes));
    return new ReadableByteChannel() {
      @Override
      public int read(ByteBuffer dst) throws IOException {
        ByteBuffer limited = dst.slice().limit(Math.min(dst.remaining(), max));
        int n = all.read(limited);
        if (n > 0) {
          dst.position(dst.position() + n);
        }
        return n;
      }

      @Override
      public boolean isOpen() {
        return true;
      }

      @Override
      public void close() {}
    };
  }
}
