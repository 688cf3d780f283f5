package kaon.actors.training;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Records autograd on the calling thread only, so that several workers in one JVM can run
 * forward/backward at the same time.
 *
 * <p>DJL's {@code PtGradientCollector} guards a JVM-wide static flag and throws when a second one
 * opens, although libtorch's grad mode is thread-local. Serializing workers on that flag costs
 * about half the speed-up of a second worker (measured in {@code notes/djl-parallel.md}: 1.9x with
 * this collector against 1.5x with a lock). This does what DJL's does minus the flag, and
 * deliberately offers no {@code zeroGradients()}: DJL's walks every model in the JVM and would zero
 * other workers' gradients in the middle of their step.
 *
 * <p>Uses DJL's internal {@link JniUtils}: re-read {@code PtGradientCollector} on every DJL upgrade.
 */
public final class LocalGradientCollector implements AutoCloseable {

  private final boolean previousGradMode;

  LocalGradientCollector() {
    previousGradMode = JniUtils.isGradMode();
    JniUtils.setGradMode(true);
  }

  /**
   * Accumulates {@code scale} times d(loss)/d(parameter) into every parameter's gradient.
   *
   * <p>The scale seeds backward, in a tensor libtorch allocated. Inside the graph it would have
   * to be {@code loss.mul(scale)}, and DJL makes that scalar from a Java direct buffer that it
   * releases as soon as the forward op returns, while the graph keeps the scalar for backward:
   * a GC in between freed it, and backward multiplied every gradient by whatever the allocator
   * had written there since (seen: every gradient of one step times -1.3e7, the loss right; in
   * about 1 run in 40 of 2 workers in one JVM, 1 in 4 with a 300 MB heap, and once in a while in
   * CI). The same holds for every {@code NDArray} op with a {@code Number} argument: never record
   * one in a graph.
   */
  void backward(NDArray loss, float scale) {
    try (NDArray seed = loss.getManager().full(loss.getShape(), scale)) {
      JniUtils.backward((PtNDArray) loss, (PtNDArray) seed, false, false);
    }
  }

  @Override
  public void close() {
    JniUtils.setGradMode(previousGradMode);
  }

  /**
   * Prepares the calling thread for training: intra-op threads set before its first GEMM (libtorch
   * applies the setting lazily, and a GEMM before it runs with every core and changes results by
   * an ulp), and grad mode off outside a collector (new threads start with it on, which would make
   * optimizer updates and evaluation build autograd graphs).
   */
  public static void prepareThread(int intraOpThreads) {
    // The native library is loaded with the engine; JniUtils calls fail before that.
    Engine.getEngine("PyTorch");
    JniUtils.setNumThreads(intraOpThreads);
    JniUtils.setGradMode(false);
  }
}
