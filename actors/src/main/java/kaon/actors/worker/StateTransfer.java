package kaon.actors.worker;

import java.util.HexFormat;
import kaon.actors.checkpoint.CheckpointStore;

/**
 * A rank's state (the checkpoint payload of its parameters, optimizer state and data cursor)
 * carried to the other ranks of a generation by one all-reduce: the rank that holds it
 * contributes the payload, every other rank zeros, and the sum is the payload on every rank.
 *
 * <p>Each float carries two bytes as an integer in {@code [0, 65535]}: a float represents those
 * exactly, and adding zeros to them is exact, so the bytes arrive unchanged whatever the ring's
 * order of additions. (Floats of the payload itself would not survive: {@code -0.0 + 0.0} is
 * {@code +0.0}, and the replicas' digests would differ.) A header carries the payload's length
 * and its sha256, which every rank checks; a rank that holds the state already checks its own
 * against it, so diverged replicas are caught when a generation starts.
 */
final class StateTransfer {

  /** Floats before the payload: the length (two halves) and the 32 bytes of the sha256. */
  static final int HEADER_FLOATS = 2 + 16;

  private StateTransfer() {}

  /** Floats the all-reduce needs for a payload of {@code bytes} bytes. */
  static int floatsFor(int bytes) {
    return HEADER_FLOATS + (bytes + 1) / 2;
  }

  /** The source rank's buffer for {@code payload}. */
  static float[] encode(byte[] payload) {
    float[] buffer = new float[floatsFor(payload.length)];
    buffer[0] = payload.length >>> 16;
    buffer[1] = payload.length & 0xffff;
    byte[] sha = HexFormat.of().parseHex(CheckpointStore.checksum(payload));
    for (int i = 0; i < 16; i++) {
      buffer[2 + i] = twoBytes(sha, 2 * i);
    }
    for (int i = 0; i < (payload.length + 1) / 2; i++) {
      buffer[HEADER_FLOATS + i] = twoBytes(payload, 2 * i);
    }
    return buffer;
  }

  /** The buffer of a rank that receives a payload of {@code bytes} bytes: zeros. */
  static float[] blank(int bytes) {
    return new float[floatsFor(bytes)];
  }

  /** What a received buffer carries. */
  record Received(byte[] payload, String sha) {}

  /** The payload and checksum out of a reduced buffer; fails if they do not match. */
  static Received decode(float[] buffer) {
    int length = (bits(buffer[0]) << 16) | bits(buffer[1]);
    if (length < 0 || floatsFor(length) != buffer.length) {
      throw new IllegalStateException("state transfer of " + buffer.length + " floats announces " + length + " bytes");
    }
    byte[] sha = new byte[32];
    for (int i = 0; i < 16; i++) {
      putTwoBytes(bits(buffer[2 + i]), sha, 2 * i);
    }
    byte[] payload = new byte[length];
    for (int i = 0; i < (length + 1) / 2; i++) {
      putTwoBytes(bits(buffer[HEADER_FLOATS + i]), payload, 2 * i);
    }
    String expected = HexFormat.of().formatHex(sha);
    String actual = CheckpointStore.checksum(payload);
    if (!expected.equals(actual)) {
      throw new IllegalStateException("state transfer arrived damaged: sha256 " + actual + ", sent " + expected);
    }
    return new Received(payload, expected);
  }

  private static float twoBytes(byte[] bytes, int at) {
    int high = bytes[at] & 0xff;
    int low = at + 1 < bytes.length ? bytes[at + 1] & 0xff : 0;
    return (high << 8) | low;
  }

  private static void putTwoBytes(int value, byte[] bytes, int at) {
    bytes[at] = (byte) (value >>> 8);
    if (at + 1 < bytes.length) {
      bytes[at + 1] = (byte) value;
    }
  }

  private static int bits(float value) {
    int v = (int) value;
    if (v != value || v < 0 || v > 0xffff) {
      throw new IllegalStateException("state transfer arrived damaged: " + value + " is not a 16-bit value "
          + "(did more than one rank send its state?)");
    }
    return v;
  }
}
