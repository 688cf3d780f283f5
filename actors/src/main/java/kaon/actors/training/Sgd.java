package kaon.actors.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Stochastic gradient descent with optional momentum and L2 weight decay, as PyTorch's {@code
 * torch.optim.SGD} (dampening 0, no Nesterov): {@code g += wd*w; v = mu*v + g; w -= lr*v}.
 * State: one velocity tensor per parameter ({@code <name>/momentum}) when momentum is on.
 */
final class Sgd extends Optimizer {

  Sgd(OptimizerSpec spec, NDManager manager) {
    super(spec, manager);
  }

  @Override
  public void update(String name, NDArray weight, NDArray gradient) {
    NDArray g = gradient;
    NDArray decayed = null;
    if (spec.weightDecay() > 0) {
      decayed = weight.mul(spec.weightDecay());
      decayed.addi(gradient);
      g = decayed;
    }
    try {
      if (spec.momentum() > 0) {
        NDArray velocity = state(name + "/momentum", weight);
        velocity.muli(spec.momentum()).addi(g);
        g = velocity;
      }
      try (NDArray step = g.mul(spec.learningRate())) {
        weight.subi(step);
      }
    } finally {
      if (decayed != null) {
        decayed.close();
      }
    }
  }
}
