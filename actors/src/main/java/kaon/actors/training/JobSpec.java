package kaon.actors.training;

import java.util.Objects;

/**
 * What to train and how: the part of a job that never changes after submission.
 *
 * @param task task name or class (see {@link kaon.actors.training.TaskCatalog})
 * @param workers ranks the job starts with; one device each
 * @param minWorkers fewest ranks the job may run with
 * @param maxWorkers most ranks the job may run with
 * @param epochs passes over the training set
 * @param globalBatch examples per step over all ranks; fixed whatever the number of ranks
 * @param optimizer update rule and hyper-parameters
 * @param seed parameter initialization and per-epoch shuffles
 * @param maxSteps stop after this many steps in total, 0 for no limit (short runs and tests)
 * @param modelOutput file rank 0 writes the final parameters to (DJL {@code .params}), empty for none
 * @param checkpointEverySteps rank 0 checkpoints after every this many steps; 0 for never
 */
public record JobSpec(
    String task,
    int workers,
    int minWorkers,
    int maxWorkers,
    int epochs,
    int globalBatch,
    OptimizerSpec optimizer,
    long seed,
    long maxSteps,
    String modelOutput,
    long checkpointEverySteps) {

  public JobSpec {
    Objects.requireNonNull(task, "task");
    Objects.requireNonNull(optimizer, "optimizer");
    Objects.requireNonNull(modelOutput, "modelOutput");
    if (task.isBlank()) {
      throw new IllegalArgumentException("task: must name a task");
    }
    if (workers <= 0) {
      throw new IllegalArgumentException("workers: must be positive, was " + workers);
    }
    if (minWorkers <= 0 || minWorkers > maxWorkers || workers < minWorkers || workers > maxWorkers) {
      throw new IllegalArgumentException(
          "workers: " + workers + " must lie within minWorkers " + minWorkers + " .. maxWorkers " + maxWorkers);
    }
    if (epochs <= 0) {
      throw new IllegalArgumentException("epochs: must be positive, was " + epochs);
    }
    if (globalBatch <= 0) {
      throw new IllegalArgumentException("globalBatch: must be positive, was " + globalBatch);
    }
    if (globalBatch < workers) {
      throw new IllegalArgumentException(
          "globalBatch: " + globalBatch + " examples cannot be split over " + workers + " workers");
    }
    if (globalBatch < maxWorkers) {
      throw new IllegalArgumentException(
          "globalBatch: " + globalBatch + " examples cannot be split over up to " + maxWorkers + " workers");
    }
    if (checkpointEverySteps < 0) {
      throw new IllegalArgumentException("checkpointEverySteps: must not be negative, was " + checkpointEverySteps);
    }
    if (maxSteps < 0) {
      throw new IllegalArgumentException("maxSteps: must not be negative, was " + maxSteps);
    }
  }

  /** A job of exactly {@code workers} ranks. */
  public JobSpec(String task, int workers, int epochs, int globalBatch, OptimizerSpec optimizer, long seed,
      long maxSteps, String modelOutput, long checkpointEverySteps) {
    this(task, workers, workers, workers, epochs, globalBatch, optimizer, seed, maxSteps, modelOutput, checkpointEverySteps);
  }

  /** The same spec with other bounds, and a start size inside them. */
  public JobSpec withBounds(int min, int max) {
    int start = Math.max(min, Math.min(max, workers));
    return new JobSpec(task, start, min, max, epochs, globalBatch, optimizer, seed, maxSteps, modelOutput, checkpointEverySteps);
  }
}
