package kaon.runtime.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import kaon.actors.data.DatasetUnavailableException;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskDefaults;
import kaon.actors.training.TrainingTask;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.runtime.KaonNode;
import kaon.runtime.cli.client.ApiConnection;
import kaon.runtime.cli.client.ApiErrors;
import kaon.runtime.cli.client.JobEventPrinter;
import kaon.runtime.cli.client.ModelDownload;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code kaon train}: starts a local one-node cluster for this run and, through its gRPC API like
 * any client, submits one job to it and watches it to the end. Every option left out takes the
 * task's default recipe.
 */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description = "Train a task on a local cluster started for this run, printing per-epoch metrics.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:the job succeeded",
      "1:the job failed or was cancelled",
      "2:invalid command line",
      "3:the environment is not ready (data missing, unknown task)"
    })
final class TrainCommand implements Callable<Integer> {


  @Spec CommandSpec command;

  @Option(names = "--task", defaultValue = "fashion-mnist-mlp", description = "Task name or TrainingTask class (default: ${DEFAULT-VALUE}; see 'kaon tasks').")
  String task;

  @Option(names = "--workers", defaultValue = "1", description = "Workers (data-parallel ranks), one device each (default: ${DEFAULT-VALUE}).")
  int workers;

  @Option(names = "--epochs", description = "Passes over the training set (task default).")
  Integer epochs;

  @Option(names = "--batch", description = "Global batch, split over the workers (task default).")
  Integer batch;

  @Option(names = "--optimizer", description = "sgd, adam or adamw (task default).")
  String optimizer;

  @Option(names = "--lr", description = "Learning rate (task default).")
  Float learningRate;

  @Option(names = "--momentum", description = "SGD momentum (task default).")
  Float momentum;

  @Option(names = "--seed", description = "Seed of initialization and shuffling (task default).")
  Long seed;

  @Option(names = "--max-steps", defaultValue = "0", description = "Stop after this many steps; 0 trains every epoch.")
  long maxSteps;

  @Option(names = "--data-dir", description = "Directory of the task's data files (task default).")
  Path dataDir;

  @Option(names = "--output", description = "Save the trained parameters here (DJL .params format): downloaded "
      + "through the API once the job has succeeded, and checked against the job's digest (their sha256).")
  Path output;

  @Option(names = "--threads-per-worker", description = "libtorch threads per worker (default: cores / workers).")
  Integer threadsPerWorker;

  @Option(names = "--checkpoint-every", defaultValue = "200", description = "Checkpoint every this many steps; 0 for never (default: ${DEFAULT-VALUE}).")
  long checkpointEvery;

  @Option(names = "--job-id", description = "Job id; running train again with the same id and options watches (and resumes) that job instead of starting another.")
  String jobId;

  @Override
  public Integer call() throws Exception {
    validate();
    TaskCatalog catalog = TaskCatalog.load(getClass().getClassLoader());
    TrainingTask trainingTask;
    try {
      trainingTask = catalog.find(task);
      // Loaded here, before any node starts, so a missing file is one message and exit code 3;
      // the node's workers then share this copy.
      catalog.data(trainingTask, dataDir);
    } catch (TaskCatalog.UnknownTaskException | DatasetUnavailableException e) {
      command.commandLine().getErr().println("kaon: " + e.getMessage());
      return KaonCli.ENVIRONMENT;
    }
    int cores = Runtime.getRuntime().availableProcessors();
    int threads = threadsPerWorker != null ? threadsPerWorker : Math.max(1, cores / workers);
    // This run's own node and API, with a token that exists only in this process.
    String token = UUID.randomUUID().toString();
    Config config = ConfigFactory.empty()
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(workers))
        .withValue("kaon.node.threads-per-slot", ConfigValueFactory.fromAnyRef(threads))
        .withValue("kaon.worker.data-dir", ConfigValueFactory.fromAnyRef(dataDir == null ? "" : dataDir.toString()))
        // Any free port, so that it never collides with a running `kaon node`.
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.grpc.interface", ConfigValueFactory.fromAnyRef("127.0.0.1"))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef(token))
        .withValue("kaon.grpc.tls.certificate", ConfigValueFactory.fromAnyRef(""))
        .withValue("kaon.grpc.tls.private-key", ConfigValueFactory.fromAnyRef(""))
        .withFallback(ConfigFactory.load());
    JobSpecification spec = jobSpec(catalog, trainingTask);
    PrintWriter out = command.commandLine().getOut();
    KaonNode.Running node = KaonNode.startLocal(config, catalog, line -> {
      out.println(line);
      out.flush();
    });
    ApiConnection.Target target = ApiConnection.Target.plaintext("127.0.0.1", node.grpcPort(), Optional.of(token));
    try (ApiConnection api = ApiConnection.open(target)) {
      // The job goes through the API like any client's: a request id makes a retry (or a second
      // `train` with the same --job-id) land on the same job.
      String requestId = jobId != null ? jobId : "train-" + UUID.randomUUID();
      Job job = api.call(api.jobs().submitJob(), SubmitJobRequest.newBuilder().setRequestId(requestId).setSpec(spec).build());
      JobSpecification s = job.getSpec();
      out.printf(Locale.ROOT, "Training %s on %d worker%s (%d thread%s each), %d epochs, global batch %d, %s lr %s; job %s%n",
          s.getTask(), job.getWorldSize(), job.getWorldSize() == 1 ? "" : "s", threads, threads == 1 ? "" : "s",
          s.getEpochs(), s.getGlobalBatch(), s.getOptimizer(), s.getLearningRate(), job.getJobId());
      out.flush();
      // A console means a person is watching: draw a progress bar; never into a pipe or a log.
      JobEventPrinter printer = new JobEventPrinter(out, JobEventPrinter.onTerminal());
      api.watchJob(job.getJobId(), printer);
      if (printer.exitCode() == 0 && output != null) {
        // Like any client's: the node stored the model before the job could succeed.
        ModelDownload.Saved saved = ModelDownload.save(api, job.getJobId(), output);
        out.printf(Locale.ROOT, "Model saved to %s (%,d bytes, sha256 %s)%n", saved.file(), saved.bytes(), saved.sha256());
        out.flush();
      }
      return printer.exitCode();
    } catch (Exception e) {
      return ApiErrors.report(ApiErrors.describe(e, target), e, command.commandLine().getErr());
    } finally {
      node.system().terminate();
      node.system().getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  /** The job as the API takes it: every option the user gave, the task's defaults for the rest. */
  private JobSpecification jobSpec(TaskCatalog catalog, TrainingTask trainingTask) {
    TaskDefaults defaults = trainingTask.defaults();
    JobSpecification.Builder b = JobSpecification.newBuilder()
        .setTask(catalog.reference(trainingTask))
        .setMinWorkers(workers)
        .setMaxWorkers(workers)
        .setEpochs(epochs != null ? epochs : defaults.epochs())
        .setGlobalBatch(batch != null ? batch : defaults.globalBatch())
        .setOptimizer(optimizer != null ? optimizer.toLowerCase(Locale.ROOT) : defaults.optimizer().kind().name().toLowerCase(Locale.ROOT))
        .setSeed(seed != null ? seed : defaults.seed())
        .setMaxSteps(maxSteps)
        .setCheckpointEverySteps(checkpointEvery);
    if (learningRate != null) {
      b.setLearningRate(learningRate);
    }
    if (momentum != null) {
      b.setMomentum(momentum);
    }
    return b.build();
  }

  private void validate() {
    if (workers <= 0) {
      throw new ParameterException(command.commandLine(), "--workers must be at least 1, was " + workers);
    }
    if (epochs != null && epochs <= 0) {
      throw new ParameterException(command.commandLine(), "--epochs must be at least 1, was " + epochs);
    }
    if (batch != null && batch < workers) {
      throw new ParameterException(command.commandLine(),
          "--batch " + batch + " cannot be split over " + workers + " workers (needs at least one example each)");
    }
    if (learningRate != null && !(learningRate > 0 && Float.isFinite(learningRate))) {
      throw new ParameterException(command.commandLine(), "--lr must be a positive number, was " + learningRate);
    }
    if (momentum != null && !(momentum >= 0 && momentum < 1)) {
      throw new ParameterException(command.commandLine(), "--momentum must be in [0, 1), was " + momentum);
    }
    if (optimizer != null) {
      try {
        OptimizerSpec.Kind.parse(optimizer);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(command.commandLine(), "--optimizer: " + e.getMessage());
      }
    }
    if (maxSteps < 0) {
      throw new ParameterException(command.commandLine(), "--max-steps must not be negative, was " + maxSteps);
    }
    if (checkpointEvery < 0) {
      throw new ParameterException(command.commandLine(), "--checkpoint-every must not be negative, was " + checkpointEvery);
    }
    if (jobId != null && !jobId.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
      throw new ParameterException(command.commandLine(),
          "--job-id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    if (output != null && !java.nio.file.Files.isDirectory(output.toAbsolutePath().getParent())) {
      // Said now, not after the training it would waste.
      throw new ParameterException(command.commandLine(), "--output: the directory of " + output + " does not exist");
    }
    if (threadsPerWorker != null && threadsPerWorker <= 0) {
      throw new ParameterException(command.commandLine(), "--threads-per-worker must be at least 1");
    }
  }
}
