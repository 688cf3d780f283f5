package kaon.actors.training;

import java.util.Locale;
import java.util.Objects;

/**
 * Which optimizer a job uses and its hyper-parameters. Semantics follow PyTorch's {@code
 * torch.optim} classes of the same name, so recipes carry over unchanged.
 *
 * @param kind the update rule
 * @param learningRate step size
 * @param momentum SGD momentum (0 for plain SGD); ignored by Adam
 * @param beta1 Adam's first-moment decay
 * @param beta2 Adam's second-moment decay
 * @param epsilon Adam's denominator guard
 * @param weightDecay L2 penalty for SGD and Adam, decoupled decay for AdamW
 */
public record OptimizerSpec(
    Kind kind,
    float learningRate,
    float momentum,
    float beta1,
    float beta2,
    float epsilon,
    float weightDecay) {

  /** The update rules Kaon implements with exportable state. */
  public enum Kind {
    SGD,
    ADAM,
    ADAMW;

    /** Parses {@code sgd}, {@code adam} or {@code adamw}, any case. */
    public static Kind parse(String s) {
      try {
        return valueOf(s.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("unknown optimizer '" + s + "' (known: sgd, adam, adamw)");
      }
    }
  }

  public OptimizerSpec {
    Objects.requireNonNull(kind, "kind");
    requireFinite("learningRate", learningRate, false);
    requireFinite("weightDecay", weightDecay, true);
    if (momentum < 0 || momentum >= 1) {
      throw new IllegalArgumentException("momentum must be in [0, 1), was " + momentum);
    }
    if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) {
      throw new IllegalArgumentException("beta1 and beta2 must be in [0, 1)");
    }
    requireFinite("epsilon", epsilon, false);
  }

  /** Plain SGD (momentum 0 gives PyTorch's default {@code torch.optim.SGD}). */
  public static OptimizerSpec sgd(float learningRate, float momentum) {
    return new OptimizerSpec(Kind.SGD, learningRate, momentum, 0.9f, 0.999f, 1e-8f, 0f);
  }

  /** Adam with PyTorch's default betas and epsilon. */
  public static OptimizerSpec adam(float learningRate) {
    return new OptimizerSpec(Kind.ADAM, learningRate, 0f, 0.9f, 0.999f, 1e-8f, 0f);
  }

  /** The same spec with another learning rate. */
  public OptimizerSpec withLearningRate(float lr) {
    return new OptimizerSpec(kind, lr, momentum, beta1, beta2, epsilon, weightDecay);
  }

  /** The same spec with another momentum. */
  public OptimizerSpec withMomentum(float m) {
    return new OptimizerSpec(kind, learningRate, m, beta1, beta2, epsilon, weightDecay);
  }

  private static void requireFinite(String field, float v, boolean zeroAllowed) {
    if (!Float.isFinite(v) || v < 0 || (!zeroAllowed && v == 0)) {
      throw new IllegalArgumentException(
          field + " must be " + (zeroAllowed ? "non-negative" : "positive") + ", was " + v);
    }
  }
}
