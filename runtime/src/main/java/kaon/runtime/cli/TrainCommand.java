package kaon.runtime.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import kaon.actors.data.DatasetUnavailableException;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobSpec;
import kaon.actors.job.JobStatus;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskDefaults;
import kaon.actors.training.TrainingTask;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code kaon train}: starts a local one-node cluster for this run, submits one job to it and
 * prints its progress until it ends. Every option left out takes the task's default recipe.
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

  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration REWATCH = Duration.ofSeconds(5);

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

  @Option(names = "--output", description = "Write the trained parameters here (DJL .params format).")
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
    JobSpec spec = jobSpec(trainingTask);
    int cores = Runtime.getRuntime().availableProcessors();
    int threads = threadsPerWorker != null ? threadsPerWorker : Math.max(1, cores / workers);
    Config config = ConfigFactory.empty()
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(workers))
        .withValue("kaon.node.threads-per-slot", ConfigValueFactory.fromAnyRef(threads))
        .withValue("kaon.worker.data-dir", ConfigValueFactory.fromAnyRef(dataDir == null ? "" : dataDir.toString()))
        // This run's own node: any free port, so that it never collides with a running `kaon node`.
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withFallback(ConfigFactory.load());

    PrintWriter out = command.commandLine().getOut();
    out.printf(Locale.ROOT, "Training %s on %d worker%s (%d thread%s each), %d epochs, global batch %d, %s lr %s%n",
        spec.task(), workers, workers == 1 ? "" : "s", threads, threads == 1 ? "" : "s", spec.epochs(),
        spec.globalBatch(), spec.optimizer().kind().name().toLowerCase(Locale.ROOT), spec.optimizer().learningRate());
    out.flush();
    ActorSystem<Void> system = KaonNode.startLocal(config, catalog, line -> {
      out.println(line);
      out.flush();
    }).system();
    try {
      return run(system, spec, out);
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  private int run(ActorSystem<Void> system, JobSpec spec, PrintWriter out) throws Exception {
    String id = jobId != null ? jobId : "job-" + UUID.randomUUID().toString().substring(0, 8);
    EntityRef<JobCoordinator.Command> job = ClusterSharding.get(system).entityRefFor(JobCoordinator.ENTITY_KEY, id);
    BlockingQueue<JobCoordinator.JobUpdate> updates = new LinkedBlockingQueue<>();
    ActorRef<JobCoordinator.JobUpdate> watcher = system.systemActorOf(
        Behaviors.receiveMessage(update -> {
          updates.add(update);
          return Behaviors.same();
        }),
        "cli-watcher",
        Props.empty());
    AskPattern.<JobCoordinator.Command, JobStatus>askWithStatus(
            job, replyTo -> new JobCoordinator.Submit(spec, replyTo), ASK_TIMEOUT, system.scheduler())
        .toCompletableFuture()
        .get(ASK_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    // A console means a person is watching: draw a progress bar; never into a pipe or a log.
    JobConsole console = new JobConsole(out, System.console() != null);
    while (true) {
      // Watching again now and then is idempotent, and it re-subscribes after the coordinator
      // restarted (watchers are not persisted).
      job.tell(new JobCoordinator.Watch(watcher));
      JobCoordinator.JobUpdate update = updates.poll(REWATCH.toMillis(), TimeUnit.MILLISECONDS);
      while (update != null) {
        JobStatus end = console.show(update);
        if (end != null) {
          return end.phase() == JobStatus.Phase.SUCCEEDED ? 0 : KaonCli.JOB_FAILED;
        }
        update = updates.poll(REWATCH.toMillis(), TimeUnit.MILLISECONDS);
      }
    }
  }

  private JobSpec jobSpec(TrainingTask trainingTask) {
    TaskDefaults defaults = trainingTask.defaults();
    OptimizerSpec opt = defaults.optimizer();
    if (optimizer != null) {
      OptimizerSpec.Kind kind = OptimizerSpec.Kind.parse(optimizer);
      if (kind != opt.kind()) {
        opt = kind == OptimizerSpec.Kind.SGD
            ? OptimizerSpec.sgd(opt.learningRate(), 0f)
            : new OptimizerSpec(kind, 0.001f, 0f, 0.9f, 0.999f, 1e-8f, kind == OptimizerSpec.Kind.ADAMW ? 0.01f : 0f);
      }
    }
    if (learningRate != null) {
      opt = opt.withLearningRate(learningRate);
    }
    if (momentum != null) {
      opt = opt.withMomentum(momentum);
    }
    return new JobSpec(
        trainingTask.name(),
        workers,
        epochs != null ? epochs : defaults.epochs(),
        batch != null ? batch : defaults.globalBatch(),
        opt,
        seed != null ? seed : defaults.seed(),
        maxSteps,
        output == null ? "" : output.toAbsolutePath().toString(),
        checkpointEvery);
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
    if (threadsPerWorker != null && threadsPerWorker <= 0) {
      throw new ParameterException(command.commandLine(), "--threads-per-worker must be at least 1");
    }
  }
}
