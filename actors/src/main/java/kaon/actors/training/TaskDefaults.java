package kaon.actors.training;

import java.util.Objects;

/**
 * A task's default recipe: what a job gets for every field its spec leaves out.
 *
 * @param epochs passes over the training set
 * @param globalBatch examples per step summed over all workers; it stays fixed when the number of
 *     workers changes, so the optimization does not depend on the world size
 * @param optimizer optimizer and its hyper-parameters
 * @param seed seeds parameter initialization and the per-epoch shuffles
 */
public record TaskDefaults(int epochs, int globalBatch, OptimizerSpec optimizer, long seed) {
  public TaskDefaults {
    Objects.requireNonNull(optimizer, "optimizer");
    if (epochs <= 0) {
      throw new IllegalArgumentException("epochs must be positive, was " + epochs);
    }
    if (globalBatch <= 0) {
      throw new IllegalArgumentException("globalBatch must be positive, was " + globalBatch);
    }
  }
}
