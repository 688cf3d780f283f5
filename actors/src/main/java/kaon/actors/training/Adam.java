package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Adam and AdamW as PyTorch's {@code torch.optim.Adam}/{@code AdamW}: bias-corrected first and
 * second moments; weight decay is an L2 term added to the gradient for Adam and a decoupled
 * shrink of the weights for AdamW. State: {@code <name>/m} and {@code <name>/v} per parameter,
 * plus the step count the bias correction needs.
 */
final class Adam extends Optimizer {

  Adam(OptimizerSpec spec, NDManager manager) {
    super(spec, manager);
  }

  @Override
  public void update(String name, NDArray weight, NDArray gradient) {
    float lr = spec.learningRate();
    float b1 = spec.beta1();
    float b2 = spec.beta2();
    long t = steps + 1;
    boolean decoupled = spec.kind() == OptimizerSpec.Kind.ADAMW;
    if (decoupled && spec.weightDecay() > 0) {
      weight.muli(1f - lr * spec.weightDecay());
    }
    NDArray g = gradient;
    NDArray decayed = null;
    if (!decoupled && spec.weightDecay() > 0) {
      decayed = weight.mul(spec.weightDecay());
      decayed.addi(gradient);
      g = decayed;
    }
    NDArray m = state(name + "/m", weight);
    NDArray v = state(name + "/v", weight);
    try (NDArray scaledG = g.mul(1f - b1);
        NDArray g2 = g.square()) {
      m.muli(b1).addi(scaledG);
      g2.muli(1f - b2);
      v.muli(b2).addi(g2);
    }
    double bc1 = 1 - Math.pow(b1, t);
    double bc2 = 1 - Math.pow(b2, t);
    float stepSize = (float) (lr / bc1);
    try (NDArray denom = v.sqrt()) {
      denom.divi((float) Math.sqrt(bc2)).addi(spec.epsilon());
      try (NDArray ratio = m.div(denom)) {
        ratio.muli(stepSize);
        weight.subi(ratio);
      }
    } finally {
      if (decayed != null) {
        decayed.close();
      }
    }
  }
}
