package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A CPU replica's trainable parameters and their gradients, each kind in one tensor: every
 * parameter's tensor, and from the first backward on its gradient, uses its region of their
 * memory, back to back in the replica's flat-buffer order. So the gradients are read out of one
 * buffer and zeroed in Java, and the optimizer updates all parameters as one tensor: about 70
 * native calls of an MLP step (per parameter: the gradient's handle, view, release and zeroing;
 * the update's tensors and operations) become a handful, which took an MLP step from 1.8 to
 * 1.5 ms (bench/step-profile, one worker).
 *
 * <p>Every value is what a tensor per parameter gives: forward and backward run on the same
 * tensors, only their storage moved, and the optimizer's operations are element-wise.
 *
 * <p>DJL's {@code set(Buffer)} on a CPU tensor adopts a direct buffer as the tensor's storage
 * without copying (libtorch's {@code set_}, with no owner of its own): what {@code
 * ModelReplica.overwrite} must avoid, here the point. The memory is libtorch's, owned by the two
 * tensors made here, which close with the replica's manager as the parameters do; closing a
 * tensor never frees memory it was given. Not thread-safe: the replica's training thread only.
 */
final class FlatParameters {

  private static final byte[] ZEROS = new byte[64 * 1024];

  private final NDManager manager;
  private final List<Parameter> parameters;
  private final List<Optimizer.Segment> layout;
  private final int size;
  private NDArray weights;
  private NDArray gradients;
  /** A view of {@link #gradients}' memory; its regions are the parameters' gradients once shared. */
  private ByteBuffer gradientMemory;
  private boolean gradientsShared;

  /**
   * Moves {@code parameters} (as {@code layout} places them, {@code size} floats in all) into
   * memory of two new tensors of {@code manager}.
   */
  FlatParameters(NDManager manager, List<Parameter> parameters, List<Optimizer.Segment> layout, int size) {
    this.manager = manager;
    this.parameters = List.copyOf(parameters);
    this.layout = List.copyOf(layout);
    this.size = size;
    share();
  }

  /**
   * Moves every parameter's values into its region of a new weights tensor and makes its tensor
   * use that region; the gradients follow at the next backward. Again after the parameters got
   * tensors of their own (a model file loaded); the old tensors, unused, keep pointing into the
   * old memory until the manager closes them.
   */
  void share() {
    if (weights != null) {
      weights.close();
      gradients.close();
    }
    weights = manager.zeros(new Shape(size), DataType.FLOAT32);
    gradients = manager.zeros(new Shape(size), DataType.FLOAT32);
    ByteBuffer memory = view(weights);
    for (int i = 0; i < parameters.size(); i++) {
      NDArray w = parameters.get(i).getArray();
      Optimizer.Segment s = layout.get(i);
      region(memory, s).put(w.toByteBuffer(true));
      w.set(region(memory, s));
    }
    gradientMemory = view(gradients);
    gradientsShared = false;
  }

  /**
   * Before a backward: clears the gradients (NaNs included). Here rather than after reading them,
   * because {@link #update} leaves the step's sum in their memory.
   */
  void beforeBackward() {
    if (gradientsShared) {
      ByteBuffer b = gradientMemory.duplicate().clear();
      while (b.hasRemaining()) {
        b.put(ZEROS, 0, Math.min(ZEROS.length, b.remaining()));
      }
    }
  }

  /**
   * After a backward: copies every gradient into {@code into}. The first time, it moves them into
   * the gradients tensor (the backward created them); later backward passes add into a gradient
   * that exists in place (libtorch does, with grad mode off as during backward), so each lands in
   * its region.
   */
  void readGradients(float[] into) {
    if (!gradientsShared) {
      for (int i = 0; i < parameters.size(); i++) {
        Optimizer.Segment s = layout.get(i);
        try (NDArray g = parameters.get(i).getArray().getGradient()) {
          region(gradientMemory, s).put(g.toByteBuffer(true));
          g.set(region(gradientMemory, s));
        }
      }
      gradientsShared = true;
    }
    gradientMemory.asFloatBuffer().get(into, 0, size);
  }

  /** One step of {@code optimizer} on every parameter with the first {@code size} floats of {@code gradient}. */
  void update(float[] gradient, Optimizer optimizer) {
    gradientMemory.asFloatBuffer().put(gradient, 0, size);
    optimizer.updateAll(layout, weights, gradients);
  }

  /** A direct buffer over {@code array}'s memory (no copy), in native order. */
  private static ByteBuffer view(NDArray array) {
    return array.toByteBuffer(true).order(ByteOrder.nativeOrder());
  }

  /** Segment {@code s}'s floats of {@code memory}, as a buffer of their own. */
  private static ByteBuffer region(ByteBuffer memory, Optimizer.Segment s) {
    return TensorValues.floats(memory, s.offset(), s.length());
  }
}
