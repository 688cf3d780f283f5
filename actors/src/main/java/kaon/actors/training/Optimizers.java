package kaon.actors.training;

import ai.djl.ndarray.NDManager;

/**
 * Makes the {@link Optimizer} an {@link OptimizerSpec} describes. Apart from the optimizers
 * themselves, so that the base class does not know its kinds (they depend on it, not it on them).
 */
public final class Optimizers {

  private Optimizers() {}

  /** The optimizer {@code spec} describes, keeping its state on {@code manager}. */
  public static Optimizer create(OptimizerSpec spec, NDManager manager) {
    return switch (spec.kind()) {
      case SGD -> new Sgd(spec, manager);
      case ADAM, ADAMW -> new Adam(spec, manager);
    };
  }
}
