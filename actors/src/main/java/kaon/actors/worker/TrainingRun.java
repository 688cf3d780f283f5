package kaon.actors.worker;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.data.SampleLedger;
import kaon.actors.data.EpochSampler;
import kaon.actors.data.LabeledImages;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobSpec;
import kaon.actors.training.LocalGradientCollector;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.Optimizer;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskData;
import kaon.actors.training.TrainingTask;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * The training loop of one rank in one generation, on the worker's own thread: DJL calls and the
 * wait for each all-reduce block, and must never run on an actor thread.
 *
 * <p>Per step: forward/backward on this rank's slice of the global batch, the summed gradient
 * all-reduced through the rank's {@link AllReducePeer}, then the optimizer with the global mean.
 * Everything it learns goes out as messages: {@link DeviceWorker} hears when the replica is ready
 * and when the run ends, the {@link JobCoordinator} gets epoch reports and the final digest.
 */
final class TrainingRun implements Runnable {

  /** What the loop needs from its worker. */
  record Assignment(
      String jobId,
      JobSpec spec,
      long generation,
      int rank,
      int worldSize,
      DeviceSlot slot,
      ActorRef<JobCoordinator.Command> coordinator,
      ActorRef<RingMessage> peer,
      String resumeFrom) {}

  /**
   * The ask to the peer only guards against a peer that vanished; the peer's own round deadline
   * is what fails a step, and it is always shorter.
   */
  private static final Duration PEER_ASK_GUARD = Duration.ofMinutes(30);

  private final Assignment assignment;
  private final TaskCatalog catalog;
  private final CheckpointStore store;
  private final WorkerSettings settings;
  private final Scheduler scheduler;
  private final ActorRef<DeviceWorker.Command> worker;
  private final CountDownLatch begin = new CountDownLatch(1);
  private volatile boolean stopRequested;

  TrainingRun(
      Assignment assignment,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings,
      Scheduler scheduler,
      ActorRef<DeviceWorker.Command> worker) {
    this.assignment = assignment;
    this.catalog = catalog;
    this.store = store;
    this.settings = settings;
    this.scheduler = scheduler;
    this.worker = worker;
  }

  /** Lets the loop start its first step; the ring is connected by then. */
  void begin() {
    begin.countDown();
  }

  /** Asks the loop to stop at the next step boundary (or while it waits to begin). */
  void requestStop() {
    stopRequested = true;
    begin.countDown();
  }

  @Override
  public void run() {
    String failure = null;
    boolean retryable = false;
    try {
      LocalGradientCollector.prepareThread(assignment.slot().intraOpThreads());
      TrainingTask task = catalog.find(assignment.spec().task());
      TaskData data = catalog.data(task, settings.dataDir());
      try (ModelReplica replica = new ModelReplica(task, assignment.slot().device(), assignment.spec().seed())) {
        Optimizer optimizer = Optimizer.create(assignment.spec().optimizer(), replica.manager());
        CheckpointData resume = null;
        if (!assignment.resumeFrom().isEmpty()) {
          // Blocking is fine here: this is the worker's own thread, and it has nothing to do
          // before its state is loaded.
          resume = store.load(assignment.jobId(), assignment.resumeFrom()).toCompletableFuture().get();
          replica.importParameters(resume.parameters());
          optimizer.importState(resume.optimizerState());
        }
        worker.tell(new DeviceWorker.ReplicaReady(assignment.generation()));
        begin.await();
        if (!stopRequested) {
          train(replica, optimizer, data, resume);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException e) {
      failure = "cannot load checkpoint " + assignment.resumeFrom() + ": " + e.getCause().getMessage();
      retryable = true;
    } catch (RingBrokenException e) {
      failure = e.getMessage();
      retryable = true;
    } catch (StepFailedException e) {
      failure = e.getMessage();
    } catch (RuntimeException | Error e) {
      // Anything else is a bug or a damaged environment: the job must hear of it, loudly.
      failure = e.getMessage() == null ? e.toString() : e.getMessage();
      if (!(e instanceof kaon.actors.data.DatasetUnavailableException
          || e instanceof TaskCatalog.UnknownTaskException)) {
        org.slf4j.LoggerFactory.getLogger(TrainingRun.class).error("training run failed", e);
      }
    }
    worker.tell(new DeviceWorker.RunEnded(assignment.generation(), failure, retryable));
  }

  private void train(ModelReplica replica, Optimizer optimizer, TaskData data, CheckpointData resume)
      throws InterruptedException {
    JobSpec spec = assignment.spec();
    LabeledImages train = data.train();
    EpochSampler sampler = new EpochSampler(spec.seed(), train.count(), spec.globalBatch());
    int steps = sampler.stepsPerEpoch();
    long total = (long) steps * spec.epochs();
    long lastStep = spec.maxSteps() > 0 ? Math.min(spec.maxSteps(), total) : total;
    // The gradients, then this step's sums: loss, correct predictions and the slice's sample
    // ledger. Reduced with the gradients, they give every rank the global batch's figures.
    int tail = replica.size();
    float[] flat = new float[tail + 2 + SampleLedger.FLOATS];
    boolean verifiable = SampleLedger.verifiable(spec.globalBatch());
    float scale = 1f / spec.globalBatch();
    long nextProgress = 0;
    long stepsDone = resume == null ? 0 : resume.step();
    int firstEpoch = (int) (stepsDone / steps);
    long firstStep = stepsDone;
    boolean rankZero = assignment.rank() == 0;
    for (int epoch = firstEpoch; epoch < spec.epochs() && stepsDone < lastStep; epoch++) {
      int[] permutation = sampler.permutation(epoch);
      // A resumed epoch keeps the sums the checkpoint had, so its metrics and its ledger cover the
      // whole epoch.
      boolean resumed = resume != null && epoch == firstEpoch;
      double lossSum = resumed ? resume.epochLossSum() : 0;
      long correct = resumed ? resume.epochCorrect() : 0;
      SampleLedger ledger = resumed ? resume.epochLedger() : SampleLedger.EMPTY;
      long start = System.nanoTime();
      for (int step = (int) (stepsDone - (long) epoch * steps); step < steps && stepsDone < lastStep; step++) {
        if (stopRequested) {
          return;
        }
        int[] slice = sampler.slice(permutation, step, assignment.rank(), assignment.worldSize());
        ModelReplica.StepResult result = replica.computeGradients(train, slice, flat);
        flat[tail] = (float) result.lossSum();
        flat[tail + 1] = result.correct();
        SampleLedger.writeSlice(slice, flat, tail + 2);
        float[] sum = allReduce(stepsDone, flat);
        lossSum += sum[tail];
        correct += (long) sum[tail + 1];
        ledger = ledger.plusReduced(sum, tail + 2);
        replica.applyGradients(sum, scale, optimizer);
        if (rankZero && stepsDone == firstStep) {
          // Recovery is measured to here (bench/recovery): the job trains again.
          org.slf4j.LoggerFactory.getLogger(TrainingRun.class).info(
              "job {} generation {}: first step completed (step {}, {} ranks)",
              assignment.jobId(), assignment.generation(), stepsDone, assignment.worldSize());
        }
        stepsDone++;
        if (rankZero && spec.checkpointEverySteps() > 0 && stepsDone % spec.checkpointEverySteps() == 0 && stepsDone < lastStep) {
          // The copy is the only cost here: encoding and writing happen elsewhere. At an epoch
          // boundary the epoch the checkpoint resumes in has no sums yet.
          boolean boundary = stepsDone % steps == 0;
          worker.tell(new DeviceWorker.CheckpointReady(assignment.generation(), new CheckpointData(
              assignment.jobId(), stepsDone, (int) (stepsDone / steps), (int) (stepsDone % steps), spec.seed(),
              assignment.worldSize(), replica.exportParameters(), optimizer.exportState(),
              boundary ? 0 : lossSum, boundary ? 0 : correct, boundary ? SampleLedger.EMPTY : ledger)));
        }
        if (rankZero && System.nanoTime() >= nextProgress) {
          nextProgress = System.nanoTime() + settings.progressInterval().toNanos();
          assignment.coordinator().tell(new JobCoordinator.StepProgress(
              assignment.generation(), epoch, step + 1, steps, lossSum / Math.max(1, ledger.samples())));
        }
      }
      long trainNanos = System.nanoTime() - start;
      LabeledImages test = data.test();
      int from = (int) ((long) test.count() * assignment.rank() / assignment.worldSize());
      int to = (int) ((long) test.count() * (assignment.rank() + 1) / assignment.worldSize());
      int testCorrect = replica.countCorrect(test, from, to, settings.evalBatch());
      // Every sample of the epoch exactly once: what the ranks consumed, step by step and across
      // generations, against the epoch's plan.
      int stepsOfEpoch = (int) (stepsDone - (long) epoch * steps);
      boolean eachOnce = verifiable && ledger.equals(SampleLedger.ofPlanned(permutation, stepsOfEpoch, spec.globalBatch()));
      if (!eachOnce && verifiable) {
        org.slf4j.LoggerFactory.getLogger(TrainingRun.class).error(
            "job {} epoch {}: the samples used differ from the epoch's plan: used {}, planned {}", assignment.jobId(),
            epoch + 1, ledger, SampleLedger.ofPlanned(permutation, stepsOfEpoch, spec.globalBatch()));
      }
      worker.tell(new DeviceWorker.Report(assignment.generation(), new DeviceWorker.EpochSums(
          epoch, lossSum, correct, ledger.samples(), eachOnce, testCorrect, to - from, trainNanos, stepsDone)));
    }
    if (rankZero && !spec.modelOutput().isEmpty()) {
      try {
        replica.saveParameters(Path.of(spec.modelOutput()));
      } catch (java.io.IOException e) {
        throw new StepFailedException("cannot write the model to " + spec.modelOutput() + ": " + e.getMessage());
      }
    }
    worker.tell(new DeviceWorker.Report(assignment.generation(), new DeviceWorker.Finished(replica.digest())));
  }

  private float[] allReduce(long step, float[] buffer) throws InterruptedException {
    try {
      return AskPattern.<AllReducePeer.Command, AllReducePeer.Reduced>askWithStatus(
              assignment.peer().narrow(),
              replyTo -> new AllReducePeer.Reduce(step, buffer, replyTo),
              PEER_ASK_GUARD,
              scheduler)
          .toCompletableFuture()
          .get(PEER_ASK_GUARD.toMillis(), TimeUnit.MILLISECONDS)
          .buffer();
    } catch (ExecutionException e) {
      throw new RingBrokenException(e.getCause().getMessage());
    } catch (TimeoutException e) {
      throw new RingBrokenException("all-reduce peer of rank " + assignment.rank() + " did not answer");
    }
  }

  /** The ring failed (a peer missed its deadline): the job can go on without that peer. */
  private static final class RingBrokenException extends RuntimeException {
    RingBrokenException(String message) {
      super(message);
    }
  }

  /** A step that cannot complete; its message is meant for the job's status. */
  private static final class StepFailedException extends RuntimeException {
    StepFailedException(String message) {
      super(message);
    }
  }
}
