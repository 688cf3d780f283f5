package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.Callable;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.runtime.cli.client.JobSpecFile.Field;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon submit}: submits a job to a running Kaon cluster through its API. The spec comes from
 * a YAML or HOCON file, from flags, or from both (a flag replaces the file's value); the server
 * fills in the task's defaults and checks the values. Every submission carries a request id, so
 * a retried submission cannot start the job twice.
 */
@Command(
    name = "submit",
    mixinStandardHelpOptions = true,
    description = "Submit a job to a running Kaon cluster, from a spec FILE (.yaml, .yml, .conf, .hocon), "
        + "flags, or both (flags win).",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:submitted (with --watch: the job succeeded)",
      "1:with --watch: the job failed or was cancelled",
      "2:invalid command line or job spec",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class SubmitCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Parameters(index = "0", arity = "0..1", paramLabel = "FILE",
      description = "Job spec file (YAML or HOCON) with the keys task, workers, min-workers, max-workers, epochs, "
          + "global-batch, optimizer, learning-rate, momentum, weight-decay, seed, max-steps, "
          + "checkpoint-every-steps, model-output; the flags of the same names replace its values.")
  Path file;

  @Option(names = "--task", paramLabel = "NAME", description = "Task name or TrainingTask class (see 'kaon tasks').")
  String task;

  @Option(names = "--workers", paramLabel = "N", description = "A fixed number of workers: --min-workers N --max-workers N.")
  Integer workers;

  @Option(names = "--min-workers", paramLabel = "M", description = "Fewest workers the job runs on (default: 1).")
  Integer minWorkers;

  @Option(names = "--max-workers", paramLabel = "N", description = "Most workers the job runs on (default: --min-workers).")
  Integer maxWorkers;

  @Option(names = "--epochs", paramLabel = "N", description = "Passes over the training set (task default).")
  Integer epochs;

  @Option(names = {"--global-batch", "--batch"}, paramLabel = "N", description = "Global batch, split over the workers (task default).")
  Integer globalBatch;

  @Option(names = "--optimizer", paramLabel = "NAME", description = "sgd, adam or adamw (task default).")
  String optimizer;

  @Option(names = {"--learning-rate", "--lr"}, paramLabel = "X", description = "Learning rate (task default).")
  Float learningRate;

  @Option(names = "--momentum", paramLabel = "X", description = "SGD momentum (task default).")
  Float momentum;

  @Option(names = "--weight-decay", paramLabel = "X", description = "Weight decay (task default).")
  Float weightDecay;

  @Option(names = "--seed", paramLabel = "N", description = "Seed of initialization and shuffling (task default).")
  Long seed;

  @Option(names = "--max-steps", paramLabel = "N", description = "Stop after this many steps; 0 trains every epoch.")
  Long maxSteps;

  @Option(names = {"--checkpoint-every-steps", "--checkpoint-every"}, paramLabel = "STEPS",
      description = "Checkpoint every this many steps; 0 for never (server default).")
  Long checkpointEverySteps;

  @Option(names = "--model-output", paramLabel = "NAME",
      description = "A file name relative to the model directory of rank 0's node (kaon.worker.model-dir, default "
          + "~/.local/share/kaon/models), such as mlp/run-3.params, that the node writes the trained parameters to. "
          + "Any client can download them with 'kaon job ID --download FILE'.")
  String modelOutput;

  @Option(names = "--request-id", paramLabel = "ID",
      description = "Makes the submission idempotent: submitting again with the same id returns the same job "
          + "(default: a random id).")
  String requestId;

  @Option(names = "--watch", description = "Then print the job's progress until it ends, like 'kaon watch'.")
  boolean watch;

  @Override
  public Integer call() {
    JobSpecification spec;
    try {
      spec = specification();
    } catch (JobSpecFile.InvalidSpecException e) {
      return ApiErrors.report(new ApiErrors.Failure(e.getMessage(), ApiErrors.USAGE), e, command.commandLine().getErr());
    }
    // Chosen once, before the first attempt, so that any retry of this submission is the same one.
    String request = requestId != null ? requestId : UUID.randomUUID().toString();
    PrintWriter out = command.commandLine().getOut();
    return connection.run(api -> {
      Job job = api.call(api.jobs().submitJob(), SubmitJobRequest.newBuilder().setRequestId(request).setSpec(spec).build());
      out.printf(Locale.ROOT, "Submitted job %s (%s, %d..%d workers)%n", job.getJobId(), job.getSpec().getTask(),
          job.getSpec().getMinWorkers(), job.getSpec().getMaxWorkers());
      out.flush();
      if (!watch) {
        return 0;
      }
      JobEventPrinter printer = new JobEventPrinter(out, JobEventPrinter.onTerminal());
      api.watchJob(job.getJobId(), printer);
      return printer.exitCode();
    });
  }

  /** The spec file, if any, with the flags on top. */
  JobSpecification specification() throws JobSpecFile.InvalidSpecException {
    if (workers != null && (minWorkers != null || maxWorkers != null)) {
      throw new ParameterException(command.commandLine(),
          "--workers cannot be combined with --min-workers or --max-workers");
    }
    return (file != null ? JobSpecFile.read(file) : JobSpecFile.empty())
        .set(Field.TASK, task)
        .set(Field.WORKERS, workers)
        .set(Field.MIN_WORKERS, minWorkers)
        .set(Field.MAX_WORKERS, maxWorkers)
        .set(Field.EPOCHS, epochs)
        .set(Field.GLOBAL_BATCH, globalBatch)
        .set(Field.OPTIMIZER, optimizer)
        .set(Field.LEARNING_RATE, learningRate)
        .set(Field.MOMENTUM, momentum)
        .set(Field.WEIGHT_DECAY, weightDecay)
        .set(Field.SEED, seed)
        .set(Field.MAX_STEPS, maxSteps)
        .set(Field.CHECKPOINT_EVERY_STEPS, checkpointEverySteps)
        .set(Field.MODEL_OUTPUT, modelOutput)
        .toSpecification();
  }
}
