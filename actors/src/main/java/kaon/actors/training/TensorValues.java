package kaon.actors.training;

import ai.djl.ndarray.NDArray;

/** Reading a tensor's values into Java. */
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
}
