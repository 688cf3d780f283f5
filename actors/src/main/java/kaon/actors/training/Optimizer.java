package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import kaon.protocol.NamedTensor;

/**
 * An optimizer whose whole state is a set of named tensors plus a step count, so that it can be
 * checkpointed and handed to a joining rank. DJL's built-in optimizers keep their state private,
 * keyed by per-JVM parameter ids, which makes both impossible.
 *
 * <p>Updates happen in place on the parameter arrays, with grad mode off (the training thread's
 * default, see {@link LocalGradientCollector#prepareThread}). State tensors live on the replica's
 * manager and are created lazily, zero-filled, on a parameter's first update: PyTorch's rules
 * start from zero state too, which keeps recipes bit-for-bit comparable in their maths.
 */
public abstract sealed class Optimizer permits Sgd, Adam {

  /** Name of the exported step counter; parameter names never contain a slash. */
  static final String STEPS_KEY = "optimizer/steps";

  protected final OptimizerSpec spec;
  private final NDManager manager;
  private final Map<String, NDArray> state = new LinkedHashMap<>();
  /** Completed optimizer steps; Adam's bias correction depends on it. */
  protected long steps;

  protected Optimizer(OptimizerSpec spec, NDManager manager) {
    this.spec = spec;
    this.manager = manager;
  }

  /**
   * Applies one step to {@code weight} given its averaged {@code gradient}. Temporaries are closed
   * here; {@code gradient} belongs to the caller.
   */
  public abstract void update(String name, NDArray weight, NDArray gradient);

  /** Marks the end of a step, after every parameter was updated. */
  public void endStep() {
    steps++;
  }

  /** Completed steps. */
  public long steps() {
    return steps;
  }

  /** A copy of the state, in a stable order, including the step count. */
  public List<NamedTensor> exportState() {
    List<NamedTensor> out = new ArrayList<>(state.size() + 1);
    out.add(stepsTensor(steps));
    for (Map.Entry<String, NDArray> e : state.entrySet()) {
      NDArray a = e.getValue();
      out.add(new NamedTensor(e.getKey(), a.getShape().getShape(), TensorValues.copy(a)));
    }
    return out;
  }

  /** Replaces the state with an exported one (from a checkpoint or a surviving rank). */
  public void importState(List<NamedTensor> tensors) {
    state.values().forEach(NDArray::close);
    state.clear();
    steps = 0;
    for (NamedTensor t : tensors) {
      if (t.name().equals(STEPS_KEY)) {
        steps = stepsFrom(t);
      } else {
        state.put(t.name(), manager.create(t.values(), new Shape(t.shape())));
      }
    }
  }

  /** The named state tensor shaped like {@code like}, created zero-filled on first use. */
  protected NDArray state(String key, NDArray like) {
    return state.computeIfAbsent(key, k -> manager.zeros(like.getShape(), like.getDataType()));
  }

  /**
   * The step count as four 16-bit limbs, each exact in a float: state travels as float tensors,
   * and a float alone holds integers exactly only up to 2^24.
   */
  private static NamedTensor stepsTensor(long steps) {
    float[] limbs = new float[4];
    for (int i = 0; i < 4; i++) {
      limbs[i] = (steps >>> (48 - 16 * i)) & 0xffff;
    }
    return new NamedTensor(STEPS_KEY, new long[] {4}, limbs);
  }

  private static long stepsFrom(NamedTensor t) {
    float[] limbs = t.values();
    if (limbs.length != 4) {
      throw new IllegalArgumentException("optimizer step count must have 4 limbs, had " + limbs.length);
    }
    long steps = 0;
    for (float limb : limbs) {
      if (limb < 0 || limb > 0xffff || limb != Math.rint(limb)) {
        throw new IllegalArgumentException("optimizer step count limb out of range: " + limb);
      }
      steps = (steps << 16) | (long) limb;
    }
    return steps;
  }
}
