package kaon.runtime.grpc;

import io.grpc.Status;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskDefaults;
import kaon.actors.training.TrainingTask;
import kaon.actors.worker.ModelFile;
import kaon.protocol.v1.JobSpecification;
import org.apache.pekko.grpc.GrpcServiceException;

/**
 * Turns a client's {@link JobSpecification} into a complete {@link JobSpec}: the task's defaults
 * fill what the client left out, and every field is checked. A bad field is an {@code
 * INVALID_ARGUMENT} whose description starts with the field's name, so that a client can point at
 * it; nothing invalid ever reaches a job.
 */
final class SpecResolver {

  private final TaskCatalog catalog;
  private final int maxSpecBytes;

  SpecResolver(TaskCatalog catalog, int maxSpecBytes) {
    this.catalog = catalog;
    this.maxSpecBytes = maxSpecBytes;
  }

  JobSpec resolve(JobSpecification in, int startWorkers) {
    if (in.getSerializedSize() > maxSpecBytes) {
      throw invalid("spec", "is " + in.getSerializedSize() + " bytes; the limit is " + maxSpecBytes);
    }
    if (in.getTask().isBlank()) {
      throw invalid("spec.task", "is required (see 'kaon tasks')");
    }
    TrainingTask task;
    try {
      task = catalog.find(in.getTask());
    } catch (TaskCatalog.UnknownTaskException e) {
      throw invalid("spec.task", e.getMessage());
    }
    int min = in.getMinWorkers();
    int max = in.getMaxWorkers();
    if (min <= 0) {
      throw invalid("spec.min_workers", "must be at least 1, was " + min);
    }
    if (max < min) {
      throw invalid("spec.max_workers", "must be at least min_workers (" + min + "), was " + max);
    }
    TaskDefaults defaults = task.defaults();
    int epochs = in.hasEpochs() ? in.getEpochs() : defaults.epochs();
    if (epochs <= 0) {
      throw invalid("spec.epochs", "must be at least 1, was " + epochs);
    }
    int batch = in.hasGlobalBatch() ? in.getGlobalBatch() : defaults.globalBatch();
    if (batch <= 0) {
      throw invalid("spec.global_batch", "must be at least 1, was " + batch);
    }
    if (batch < max) {
      throw invalid("spec.global_batch", batch + " examples cannot be split over " + max + " workers (max_workers)");
    }
    OptimizerSpec optimizer = optimizer(in, defaults.optimizer());
    if (in.getMaxSteps() < 0) {
      throw invalid("spec.max_steps", "must not be negative, was " + in.getMaxSteps());
    }
    long checkpointEvery = in.hasCheckpointEverySteps() ? in.getCheckpointEverySteps() : 200;
    if (checkpointEvery < 0) {
      throw invalid("spec.checkpoint_every_steps", "must not be negative, was " + checkpointEvery);
    }
    String output = in.getModelOutput();
    if (!output.isEmpty()) {
      ModelFile.problem(output).ifPresent(problem -> {
        throw invalid("spec.model_output", problem);
      });
    }
    int start = Math.max(min, Math.min(max, startWorkers));
    return new JobSpec(catalog.reference(task), start, min, max, epochs, batch, optimizer,
        in.hasSeed() ? in.getSeed() : defaults.seed(), in.getMaxSteps(), output, checkpointEvery);
  }

  private static OptimizerSpec optimizer(JobSpecification in, OptimizerSpec defaults) {
    OptimizerSpec o = defaults;
    if (in.hasOptimizer()) {
      OptimizerSpec.Kind kind;
      try {
        kind = OptimizerSpec.Kind.parse(in.getOptimizer());
      } catch (IllegalArgumentException e) {
        throw invalid("spec.optimizer", e.getMessage());
      }
      if (kind != o.kind()) {
        o = kind == OptimizerSpec.Kind.SGD
            ? OptimizerSpec.sgd(o.learningRate(), 0f)
            : new OptimizerSpec(kind, 0.001f, 0f, 0.9f, 0.999f, 1e-8f, kind == OptimizerSpec.Kind.ADAMW ? 0.01f : 0f);
      }
    }
    float lr = in.hasLearningRate() ? in.getLearningRate() : o.learningRate();
    if (!(lr > 0) || !Float.isFinite(lr)) {
      throw invalid("spec.learning_rate", "must be a positive number, was " + lr);
    }
    float momentum = in.hasMomentum() ? in.getMomentum() : o.momentum();
    if (!(momentum >= 0 && momentum < 1)) {
      throw invalid("spec.momentum", "must be in [0, 1), was " + momentum);
    }
    float decay = in.hasWeightDecay() ? in.getWeightDecay() : o.weightDecay();
    if (!(decay >= 0) || !Float.isFinite(decay)) {
      throw invalid("spec.weight_decay", "must be a non-negative number, was " + decay);
    }
    return new OptimizerSpec(o.kind(), lr, momentum, o.beta1(), o.beta2(), o.epsilon(), decay);
  }

  static GrpcServiceException invalid(String field, String problem) {
    return new GrpcServiceException(Status.INVALID_ARGUMENT.withDescription(field + ": " + problem));
  }
}
