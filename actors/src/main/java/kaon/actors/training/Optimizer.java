package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
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
  /** The name {@link #updateAll} updates under; its state is never exported under it. */
  private static final String ALL = "optimizer/all";

  /** Where parameter {@code name} (shaped {@code shape}) sits in a flat tensor of them all. */
  public record Segment(String name, int offset, int length, long[] shape) {}

  protected final OptimizerSpec spec;
  private final NDManager manager;
  private final Map<String, NDArray> state = new LinkedHashMap<>();
  /** Completed optimizer steps; Adam's bias correction depends on it. */
  protected long steps;
  /** The segments of the flat state, once {@link #updateAll} joined the state into it. */
  private List<Segment> joined;

  protected Optimizer(OptimizerSpec spec, NDManager manager) {
    this.spec = spec;
    this.manager = manager;
  }

  /**
   * Applies one step to {@code weight} given its averaged {@code gradient}. Temporaries are closed
   * here; {@code gradient} belongs to the caller.
   */
  public abstract void update(String name, NDArray weight, NDArray gradient);

  /**
   * Applies one step to every parameter at once: {@code weights} holds them all back to back as
   * {@code layout} says, {@code gradient} their gradients likewise. The operations are the ones
   * {@link #update} applies per parameter, each element-wise, so every element comes out the same;
   * but it takes a handful of native calls instead of a handful per parameter (about 300 µs of a
   * 1.8 ms MLP step went to the optimizer, bench/step-profile). The state becomes flat too, joined
   * here from what {@link #importState} read per parameter, and is exported per parameter again.
   */
  public void updateAll(List<Segment> layout, NDArray weights, NDArray gradient) {
    if (joined == null) {
      join(layout, Math.toIntExact(weights.size()));
    }
    update(ALL, weights, gradient);
  }

  /** Marks the end of a step, after every parameter was updated. */
  public void endStep() {
    steps++;
  }

  /** Completed steps. */
  public long steps() {
    return steps;
  }

  /**
   * A copy of the state, in a stable order, including the step count. Flat state is cut into
   * its parameters, parameter by parameter, in the order per-parameter updates created it: a
   * checkpoint reads the same whichever way the state was kept.
   */
  public List<NamedTensor> exportState() {
    List<NamedTensor> out = new ArrayList<>(state.size() + 1);
    out.add(stepsTensor(steps));
    Map<String, float[]> flat = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : state.entrySet()) {
      NDArray a = e.getValue();
      if (e.getKey().startsWith(ALL + "/")) {
        flat.put(e.getKey().substring(ALL.length() + 1), TensorValues.copy(a));
      } else {
        out.add(new NamedTensor(e.getKey(), a.getShape().getShape(), TensorValues.copy(a)));
      }
    }
    if (!flat.isEmpty()) {
      for (Segment s : joined) {
        flat.forEach((kind, values) -> out.add(new NamedTensor(s.name() + "/" + kind, s.shape(),
            Arrays.copyOfRange(values, s.offset(), s.offset() + s.length()))));
      }
    }
    return out;
  }

  /** Replaces the state with an exported one (from a checkpoint or a surviving rank). */
  public void importState(List<NamedTensor> tensors) {
    state.values().forEach(NDArray::close);
    state.clear();
    joined = null;
    steps = 0;
    for (NamedTensor t : tensors) {
      if (t.name().equals(STEPS_KEY)) {
        steps = stepsFrom(t);
      } else {
        state.put(t.name(), manager.create(t.values(), new Shape(t.shape())));
      }
    }
  }

  /**
   * Joins the per-parameter state of the parameters in {@code layout} into one flat tensor of
   * {@code size} floats per kind of state ({@code momentum}, {@code m}, {@code v}), zeros where a parameter had none yet;
   * state of names outside the layout stays as it is.
   */
  private void join(List<Segment> layout, int size) {
    Map<String, float[]> flat = new LinkedHashMap<>();
    for (Segment s : layout) {
      for (Iterator<Map.Entry<String, NDArray>> it = state.entrySet().iterator(); it.hasNext(); ) {
        Map.Entry<String, NDArray> e = it.next();
        String key = e.getKey();
        // "<parameter>/<kind>": names hold no slash, so this is the parameter's own state.
        if (!key.startsWith(s.name() + "/") || key.indexOf('/', s.name().length() + 1) >= 0) {
          continue;
        }
        float[] values = TensorValues.copy(e.getValue());
        if (values.length != s.length()) {
          throw new IllegalArgumentException("optimizer state " + key + " has " + values.length
              + " values, its parameter " + s.length());
        }
        System.arraycopy(values, 0, flat.computeIfAbsent(key.substring(s.name().length() + 1), k -> new float[size]),
            s.offset(), s.length());
        e.getValue().close();
        it.remove();
      }
    }
    flat.forEach((kind, values) -> state.put(ALL + "/" + kind, manager.create(values, new Shape(values.length))));
    joined = List.copyOf(layout);
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
