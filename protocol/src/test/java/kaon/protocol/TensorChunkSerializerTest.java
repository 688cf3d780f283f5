package kaon.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.NotSerializableException;
import java.nio.BufferOverflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TensorChunkSerializerTest {

  /** -0.0, NaNs with payloads and sign, both infinities, the smallest subnormal. */
  private static final int[] SPECIAL_BITS = {
    0x80000000, 0x7fc00000, 0x7fc00001, 0xffc12345, 0x7f800000, 0xff800000, 0x00000001
  };

  /** Artery writes the payload after its envelope header, so floats start unaligned. */
  private static final int HEADER = 7;

  private static ActorTestKit testKit;
  private static Serialization serialization;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create("TensorChunkSerializerTest");
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 100_003})
  void roundTripsThroughSerializationExtension(int length) {
    TensorChunk chunk = chunkOf(length);
    TensorChunkSerializer serializer = serializer(chunk);

    byte[] bytes = serialization.serialize(chunk).get();
    Object back =
        serialization
            .deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, chunk))
            .get();

    assertSameBits(chunk, (TensorChunk) back);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 100_003})
  void roundTripsThroughByteBuffers(int length) throws NotSerializableException {
    TensorChunk chunk = chunkOf(length);
    TensorChunkSerializer serializer = serializer(chunk);
    int size = TensorChunkSerializer.serializedSize(chunk);
    ByteBuffer buffer = ByteBuffer.allocateDirect(HEADER + size).order(ByteOrder.BIG_ENDIAN);
    buffer.position(HEADER);

    serializer.toBinary(chunk, buffer);
    assertEquals(HEADER + size, buffer.position());
    buffer.flip().position(HEADER);
    Object back = serializer.fromBinary(buffer, Serializers.manifestFor(serializer, chunk));

    assertFalse(buffer.hasRemaining());
    assertEquals(ByteOrder.BIG_ENDIAN, buffer.order());
    assertSameBits(chunk, (TensorChunk) back);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 100_003})
  void serializedSizeIsExact(int length) {
    TensorChunk chunk = chunkOf(length);

    assertEquals(
        TensorChunkSerializer.serializedSize(chunk), serialization.serialize(chunk).get().length);
  }

  @Test
  void refusesBufferTooSmallWithoutWriting() {
    TensorChunk chunk = chunkOf(10);
    ByteBuffer buffer = ByteBuffer.allocate(TensorChunkSerializer.serializedSize(chunk) - 1);

    assertThrows(BufferOverflowException.class, () -> serializer(chunk).toBinary(chunk, buffer));
    assertEquals(0, buffer.position());
  }

  @Test
  void rejectsUnknownVersion() {
    TensorChunk chunk = chunkOf(3);
    TensorChunkSerializer serializer = serializer(chunk);
    byte[] bytes = serializer.toBinary(chunk);
    bytes[0] = 1;

    NotSerializableException e =
        assertThrows(
            NotSerializableException.class,
            () -> serializer.fromBinary(bytes, Serializers.manifestFor(serializer, chunk)));
    assertTrue(e.getMessage().contains("version 1"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void aViewDamagedAfterItsChecksumArrivesMarkedDamaged(boolean heap) throws NotSerializableException {
    TensorChunk chunk = chunkOf(1000);
    TensorChunkSerializer serializer = serializer(chunk);
    LentBuffer lent = new LentBuffer(chunk.data());
    lent.lend();
    lent.lend();
    TensorChunkView intact = new TensorChunkView(chunk.jobId(), chunk.generation(), chunk.step(), chunk.round(),
        chunk.chunk(), 0, 1000, lent);
    TensorChunkView damaged = new TensorChunkView(chunk.jobId(), chunk.generation(), chunk.step(), chunk.round(),
        chunk.chunk(), 0, 1000, lent, true);

    InboundChunk good = readBack(serializer, intact, heap);
    InboundChunk bad = readBack(serializer, damaged, heap);

    assertEquals(null, good.damage());
    assertTrue(bad.damage() != null && bad.damage().contains("checksum"), String.valueOf(bad.damage()));
    float[] values = new float[1000];
    bad.copyTo(values, 0);
    assertFalse(Arrays.equals(chunk.data(), values), "one bit of the values differs");
  }

  @Test
  void oneFlippedBitAnywhereInTheValuesIsCaught() throws NotSerializableException {
    TensorChunk chunk = chunkOf(257);
    TensorChunkSerializer serializer = serializer(chunk);
    byte[] bytes = serializer.toBinary(chunk);
    int dataStart = bytes.length - 4 - 257 * Float.BYTES;
    for (int at = dataStart; at < bytes.length - 4; at += 37) {
      byte[] flipped = bytes.clone();
      flipped[at] ^= (byte) (1 << (at % 8));
      InboundChunk read = (InboundChunk) serializer.fromBinary(flipped, Serializers.manifestFor(serializer, chunk));
      assertTrue(read.damage() != null, "a bit flipped at byte " + at);
    }
    assertEquals(null, ((InboundChunk) serializer.fromBinary(bytes, Serializers.manifestFor(serializer, chunk))).damage());
  }

  private static InboundChunk readBack(TensorChunkSerializer serializer, TensorChunkView view, boolean heap)
      throws NotSerializableException {
    int size = TensorChunkSerializer.serializedSize(new TensorChunk(view.jobId(), 0, 0, 0, 0, 0, new float[view.length()]));
    ByteBuffer buffer = heap ? ByteBuffer.allocate(size) : ByteBuffer.allocateDirect(size);
    serializer.toBinary(view, buffer);
    buffer.flip();
    return (InboundChunk) serializer.fromBinary(buffer, "TC");
  }

  @Test
  void rejectsUnknownManifest() {
    TensorChunk chunk = chunkOf(3);
    TensorChunkSerializer serializer = serializer(chunk);
    byte[] bytes = serializer.toBinary(chunk);

    NotSerializableException e =
        assertThrows(NotSerializableException.class, () -> serializer.fromBinary(bytes, "XX"));
    assertTrue(e.getMessage().contains("[XX]"), e.getMessage());
  }

  @Test
  void rejectsTruncatedBytes() {
    TensorChunk chunk = chunkOf(3);
    TensorChunkSerializer serializer = serializer(chunk);
    byte[] bytes = Arrays.copyOf(serializer.toBinary(chunk), 20);

    assertThrows(
        NotSerializableException.class,
        () -> serializer.fromBinary(bytes, Serializers.manifestFor(serializer, chunk)));
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 4096, 100_003})
  void aViewIsWrittenExactlyAsTheChunkOfItsRegion(int length) {
    TensorChunk whole = chunkOf(length + 10);
    LentBuffer lent = new LentBuffer(whole.data());
    TensorChunk region = new TensorChunk(whole.jobId(), whole.generation(), whole.step(), whole.round(), whole.chunk(),
        7, Arrays.copyOfRange(whole.data(), 7, 7 + length));
    TensorChunkView view = new TensorChunkView(region.jobId(), region.generation(), region.step(), region.round(),
        region.chunk(), 7, length, lent);
    lent.lend();
    lent.lend();

    assertArrayEquals(serializer(region).toBinary(region), serialization.serialize(view).get());
    ByteBuffer buffer = ByteBuffer.allocateDirect(HEADER + TensorChunkSerializer.serializedSize(region));
    buffer.position(HEADER);
    serializer(region).toBinary(view, buffer);

    assertFalse(buffer.hasRemaining());
    assertEquals(0, lent.unwritten());
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 4095, 4097, 100_003})
  void aHeapBufferIsReadInPlaceWithEveryBitKept(int length) throws NotSerializableException {
    TensorChunk chunk = chunkOf(length);
    TensorChunkSerializer serializer = serializer(chunk);
    // Artery's TCP transport hands over a heap buffer holding the whole frame, envelope first.
    ByteBuffer frame = ByteBuffer.allocate(HEADER + TensorChunkSerializer.serializedSize(chunk)).order(ByteOrder.BIG_ENDIAN);
    frame.position(HEADER);
    serializer.toBinary(chunk, frame);
    frame.flip().position(HEADER);

    FramedTensorChunk back = assertInstanceOf(FramedTensorChunk.class,
        serializer.fromBinary(frame, Serializers.manifestFor(serializer, chunk)));

    assertFalse(frame.hasRemaining());
    assertEquals(ByteOrder.BIG_ENDIAN, frame.order());
    assertEquals(List.of(chunk.jobId(), chunk.generation(), chunk.step(), chunk.round(), chunk.chunk(), chunk.offset(), length),
        List.of(back.jobId(), back.generation(), back.step(), back.round(), back.chunk(), back.offset(), back.length()));
    float[] copied = new float[length + 3];
    back.copyTo(copied, 3);
    assertArrayEquals(rawBits(chunk.data()), rawBits(Arrays.copyOfRange(copied, 3, length + 3)));
  }

  @Test
  void aChunkReadInPlaceAddsAsAnArrayChunkDoes() throws NotSerializableException {
    SplittableRandom random = new SplittableRandom(11);
    float[] values = new float[10_007];
    float[] target = new float[values.length + 5];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextGaussian();
    }
    for (int i = 0; i < target.length; i++) {
      target[i] = (float) random.nextGaussian();
    }
    TensorChunk chunk = new TensorChunk("job", 1, 2, 0, 0, 5, values);
    TensorChunkSerializer serializer = serializer(chunk);
    FramedTensorChunk framed = assertInstanceOf(FramedTensorChunk.class,
        serializer.fromBinary(heapCopyOf(serializer.toBinary(chunk)), "TC"));
    float[] expected = target.clone();
    chunk.addTo(expected, 5);

    framed.addTo(target, 5);

    assertArrayEquals(rawBits(expected), rawBits(target));
  }

  @Test
  void aWithdrawnViewGoesOutWithoutValuesAndTheOwnerIsNotKeptWaiting() throws NotSerializableException {
    float[] buffer = {1f, 2f, 3f, 4f};
    LentBuffer lent = new LentBuffer(buffer);
    lent.lend();
    List<String> calls = new ArrayList<>();
    assertFalse(lent.whenWritten(() -> calls.add("written")));

    lent.withdraw();
    TensorChunkView view = new TensorChunkView("job", 1, 2, 0, 0, 0, 4, lent);
    byte[] bytes = serialization.serialize(view).get();
    TensorChunk back = (TensorChunk) serializer(new TensorChunk("job", 1, 2, 0, 0, 0, buffer)).fromBinary(bytes, "TC");

    assertEquals(0, back.length());
    assertEquals(List.of(), calls);
    assertTrue(lent.whenWritten(() -> calls.add("at once")));
    assertEquals(List.of("at once"), calls);
  }

  @Test
  void theOwnerHearsOnceEveryLentRegionWasWritten() {
    float[] buffer = new float[8];
    LentBuffer lent = new LentBuffer(buffer);
    lent.lend();
    lent.lend();
    List<String> calls = new ArrayList<>();

    assertFalse(lent.whenWritten(() -> calls.add("written")));
    serialization.serialize(new TensorChunkView("job", 1, 2, 0, 0, 0, 4, lent)).get();
    assertEquals(List.of(), calls);
    assertEquals(1, lent.unwritten());
    serialization.serialize(new TensorChunkView("job", 1, 2, 0, 1, 4, 4, lent)).get();

    assertEquals(List.of("written"), calls);
    assertEquals(0, lent.unwritten());
  }

  private static ByteBuffer heapCopyOf(byte[] bytes) {
    return ByteBuffer.allocate(bytes.length).put(bytes).flip();
  }

  private static TensorChunkSerializer serializer(TensorChunk chunk) {
    return assertInstanceOf(TensorChunkSerializer.class, serialization.findSerializerFor(chunk));
  }

  /** A chunk whose data starts with the special bit patterns and goes on with random bits. */
  private static TensorChunk chunkOf(int length) {
    SplittableRandom random = new SplittableRandom(length);
    float[] data = new float[length];
    for (int i = 0; i < length; i++) {
      data[i] = Float.intBitsToFloat(i < SPECIAL_BITS.length ? SPECIAL_BITS[i] : random.nextInt());
    }
    // A non-ASCII job id checks that lengths count UTF-8 bytes, not chars.
    return new TensorChunk("jöb-7", 3, 1_000_000_000_000L, 5, 2, 12_345, data);
  }

  /** Compares raw bits: equals() would treat all NaNs alike and miss a changed payload. */
  private static void assertSameBits(TensorChunk expected, TensorChunk actual) {
    assertEquals(expected, actual);
    assertArrayEquals(rawBits(expected.data()), rawBits(actual.data()));
  }

  private static int[] rawBits(float[] data) {
    int[] bits = new int[data.length];
    for (int i = 0; i < data.length; i++) {
      bits[i] = Float.floatToRawIntBits(data[i]);
    }
    return bits;
  }
}
