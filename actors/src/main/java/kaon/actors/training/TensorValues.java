package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Reading a tensor's values into Java, and the direct buffers tensors are made from. */
final class TensorValues {

  private TensorValues() {}

  /**
   * A copy of {@code array}'s values, read through a view of its memory: DJL's {@code
   * toFloatArray} copies them twice (into a byte array, then into floats), and a checkpoint
   * copies every parameter and optimizer tensor on the training thread. The array must be
   * contiguous, as parameters and optimizer state are.
   */
  static float[] copy(NDArray array) {
    float[] out = new float[Math.toIntExact(array.size())];
    array.toByteBuffer(true).asFloatBuffer().get(out);
    return out;
  }

  /** Floats {@code [from, from + count)} of {@code buffer}, as a buffer of their own for DJL. */
  static ByteBuffer floats(ByteBuffer buffer, int from, int count) {
    return slice(buffer, from * Float.BYTES, count * Float.BYTES);
  }

  /** Bytes {@code [from, from + count)} of {@code buffer}, as a buffer of their own for DJL. */
  static ByteBuffer slice(ByteBuffer buffer, int from, int count) {
    return buffer.duplicate().position(from).limit(from + count).slice().order(ByteOrder.nativeOrder());
  }
}
