package kaon.actors.worker;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.data.EpochSampler;
import kaon.actors.data.LabeledImages;
import kaon.actors.data.SampleLedger;
import kaon.actors.training.JobSpec;
import kaon.actors.training.LocalGradientCollector;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.Optimizer;
import kaon.actors.training.Optimizers;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskData;
import kaon.actors.training.TrainingTask;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training thread of one worker, for as long as the worker holds its device: DJL calls and
 * the wait for each all-reduce block, and must never run on an actor thread.
 *
 * <p>The thread outlives generations. It trains one generation at a time ({@link Assignment}),
 * and when that generation ends (its ring broke, or the job re-forms) it parks with its replica
 * and optimizer as they were after the last step every rank completed, ready for the next one.
 * A rank that survives the loss of another is therefore never restarted and reloads nothing: the
 * next generation starts from the survivors' memory. Ranks that do not hold that state (new ones,
 * or survivors a step behind) receive it from one that does, through a single all-reduce
 * ({@link StateTransfer}) before the first step. Only when no rank holds any state does a
 * generation load a checkpoint from Cassandra.
 *
 * <p>Per step: forward/backward on this rank's slice of the global batch, the summed gradient
 * all-reduced through the generation's {@link AllReducePeer}, then the optimizer with the global
 * mean. Everything it learns goes out as messages: {@link DeviceWorker} hears when the replica is
 * ready and when a generation ends, the job's coordinator gets epoch reports and the final
 * digest, and rank 0 hands its worker the trained model to store.
 */
final class TrainingRun implements Runnable {

  private static final Logger log = LoggerFactory.getLogger(TrainingRun.class);

  /**
   * What the thread tells its worker, through an adapter of the worker's: the thread knows the
   * worker only by this protocol of its own.
   */
  sealed interface Event permits ReplicaReady, RunEnded, Report, Progressed, CheckpointReady {}

  /**
   * The replica is built (and the checkpoint loaded); {@code
   * needsState} when its state must come from another rank at {@link DeviceWorker.Begin}.
   */
  record ReplicaReady(long generation, boolean needsState) implements Event {}

  /**
   * The generation is over for this rank, with a failure message or
   * null; {@code retryable} when the job can go on in a new generation (a ring that broke). The
   * thread keeps the state of step {@code heldStep} ({@code stateBytes} encoded; -1: none) for
   * the next generation, unless {@code threadEnded}.
   */
  record RunEnded(long generation, String failure, boolean retryable, long heldStep, int stateBytes, boolean threadEnded)
      implements Event {}

  /** A report for the coordinator that must not be lost (the worker sends it through its outbox). */
  record Report(long generation, ReportBody body) implements Event {}

  /** What {@link Report} carries; the worker adds generation, rank and sequence number. */
  sealed interface ReportBody {}

  /**
   * An epoch's sums: the training ones over every rank (they travel with the gradients), the
   * test ones of this rank's share of the test split.
   */
  record EpochSums(int epoch, double lossSum, long correct, long examples, boolean eachSampleOnce, long testCorrect,
      long testExamples, long trainNanos, long stepsDone) implements ReportBody {}

  /**
   * The digest of the final parameters; rank 0 adds {@code model}, the parameters file whose
   * sha256 the digest is, to be stored before the digest goes out (null on other ranks).
   */
  record Finished(String digest, byte[] model) implements ReportBody {}

  /** Rank 0's thread: how far the generation has come, for the coordinator. */
  record Progressed(WorkerReport.StepProgress progress) implements Event {}

  /** Rank 0's thread: a checkpoint to write. */
  record CheckpointReady(long generation, CheckpointData data) implements Event {}

  /**
   * One generation of this rank.
   *
   * @param checkpoint the checkpoint to load, or empty
   * @param resumeStep the step the generation starts with
   * @param fromMembers the state comes from the members' memory: kept if this rank holds it at
   *     {@code resumeStep}, else received from the source rank at {@link Start}
   */
  record Assignment(
      String jobId,
      JobSpec spec,
      long generation,
      int rank,
      int worldSize,
      ActorRef<RingMessage> peer,
      String checkpoint,
      long resumeStep,
      boolean fromMembers) {}

  /**
   * The ring of {@code generation} is connected. {@code syncSource} is the rank whose state every
   * rank receives before the first step ({@code syncBytes} long), or -1 when every rank has it.
   */
  record Start(long generation, int syncSource, int syncBytes) {}

  private enum Wake { STOP, RELEASE }

  /**
   * The ask to the peer only guards against a peer that vanished; the peer's own round deadline
   * (or its abort when the generation is stopped) is what ends a step, and it is always sooner.
   */
  private static final Duration PEER_ASK_GUARD = Duration.ofMinutes(30);

  private final DeviceSlot slot;
  private final TaskCatalog catalog;
  private final CheckpointStore store;
  private final WorkerSettings settings;
  private final Scheduler scheduler;
  private final ActorRef<Event> worker;
  private final BlockingQueue<Object> orders = new LinkedBlockingQueue<>();
  /** Generations up to this one are to stop at their next step boundary. */
  private volatile long stopUpTo = -1;

  // Owned by the thread.
  private TrainingTask task;
  private TaskData data;
  private ModelReplica replica;
  private Optimizer optimizer;
  /** Where the replica is: after the last step every rank completed; null if not known. */
  private Progress progress;
  /** The replica's state encoded, once asked for; null when it changed since. */
  private byte[] payload;
  private String payloadSha;

  /** Steps done, the cursor and the current epoch's sums: the replica's position in the job. */
  private record Progress(long step, int epoch, int stepInEpoch, double lossSum, long correct, SampleLedger ledger) {
    static Progress of(CheckpointData data) {
      return new Progress(data.step(), data.epoch(), data.stepInEpoch(), data.epochLossSum(), data.epochCorrect(),
          data.epochLedger());
    }
  }

  TrainingRun(
      DeviceSlot slot,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings,
      Scheduler scheduler,
      ActorRef<Event> worker) {
    this.slot = slot;
    this.catalog = catalog;
    this.store = store;
    this.settings = settings;
    this.scheduler = scheduler;
    this.worker = worker;
  }

  /** Prepares {@code assignment}; the thread answers with {@link ReplicaReady}. */
  void assign(Assignment assignment) {
    orders.add(assignment);
  }

  /** Lets the generation start its first step; the ring is connected by then. */
  void begin(Start start) {
    orders.add(start);
  }

  /** Asks generations up to {@code generation} to stop at the next step boundary and park. */
  void requestStop(long generation) {
    stopUpTo = Math.max(stopUpTo, generation);
    orders.add(Wake.STOP);
  }

  /** Ends the thread (at the next step boundary); the replica and its state are dropped. */
  void release() {
    stopUpTo = Long.MAX_VALUE;
    orders.add(Wake.RELEASE);
  }

  @Override
  public void run() {
    try {
      LocalGradientCollector.prepareThread(slot.intraOpThreads());
      while (true) {
        Object order = orders.take();
        if (order == Wake.RELEASE) {
          return;
        }
        if (order instanceof Assignment assignment && !runGeneration(assignment)) {
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      dropReplica();
    }
  }

  /** Runs one generation to its end; false when the thread must end (a failure the state does not survive). */
  private boolean runGeneration(Assignment a) throws InterruptedException {
    String failure = null;
    boolean retryable = false;
    boolean keepThread = true;
    try {
      if (a.generation() <= stopUpTo) {
        return park(a, null, true);
      }
      CheckpointData state = prepare(a);
      worker.tell(new ReplicaReady(a.generation(), state == null));
      Start start = awaitStart(a.generation());
      if (start == null) {
        return park(a, null, true);
      }
      if (start.syncSource() >= 0) {
        state = receiveState(a, start, state);
      }
      train(a, state);
    } catch (RingBrokenException e) {
      failure = e.getMessage();
      retryable = true;
    } catch (DivergedException e) {
      // The parameters are those before the step, but values that blew up while staying finite
      // may have reached them earlier: the state is given up, and the next generation resumes
      // from the newest checkpoint. A job that diverges every time fails after a few generations
      // without progress.
      failure = e.getMessage();
      retryable = true;
      keepThread = false;
    } catch (ExecutionException e) {
      failure = "cannot load checkpoint " + a.checkpoint() + ": " + e.getCause().getMessage();
      retryable = true;
      keepThread = false;
    } catch (StateTransferException e) {
      failure = e.getMessage();
      retryable = true;
      keepThread = false;
    } catch (StepFailedException e) {
      failure = e.getMessage();
      keepThread = false;
    } catch (RuntimeException | Error e) {
      // Anything else is a bug or a damaged environment: the job must hear of it, loudly.
      failure = e.getMessage() == null ? e.toString() : e.getMessage();
      keepThread = false;
      if (!(e instanceof kaon.actors.data.DatasetUnavailableException || e instanceof TaskCatalog.UnknownTaskException)) {
        log.error("training run failed", e);
      }
    }
    if (!keepThread) {
      // The replica may be half loaded: nothing it holds can be trusted by a later generation.
      dropReplica();
      worker.tell(new RunEnded(a.generation(), failure, retryable, -1, 0, true));
      return false;
    }
    return park(a, failure, retryable);
  }

  /**
   * The state the generation starts from, in the replica and optimizer; null when it must come
   * from another rank.
   */
  private CheckpointData prepare(Assignment a) throws ExecutionException, InterruptedException {
    if (task == null) {
      task = catalog.find(a.spec().task());
      data = catalog.data(task, settings.dataDir());
    }
    if (!a.checkpoint().isEmpty()) {
      // Blocking is fine here: this is the worker's own thread, and it has nothing to do
      // before its state is loaded.
      CheckpointData loaded = store.load(a.jobId(), a.checkpoint()).toCompletableFuture().get();
      ensureReplica(a, false);
      replica.importParameters(loaded.parameters());
      optimizer.importState(loaded.optimizerState());
      moved(Progress.of(loaded));
      return loaded;
    }
    if (a.fromMembers()) {
      if (replica != null && progress != null && progress.step() == a.resumeStep()) {
        return withoutTensors(a, progress);
      }
      ensureReplica(a, false);
      return null;
    }
    // From the initial parameters: a replica that trained before starts over.
    ensureReplica(a, progress != null && progress.step() != 0);
    moved(new Progress(0, 0, 0, 0, 0, SampleLedger.EMPTY));
    return withoutTensors(a, progress);
  }

  private void ensureReplica(Assignment a, boolean fresh) {
    if (fresh) {
      dropReplica();
    }
    if (replica == null) {
      replica = new ModelReplica(task, slot.device(), a.spec().seed());
      optimizer = Optimizers.create(a.spec().optimizer(), replica.manager());
      moved(null);
    }
  }

  private void dropReplica() {
    if (replica != null) {
      replica.close();
    }
    replica = null;
    optimizer = null;
    moved(null);
  }

  /** The replica is now at {@code where}; an encoded copy of the old state is stale. */
  private void moved(Progress where) {
    progress = where;
    payload = null;
    payloadSha = null;
  }

  private static CheckpointData withoutTensors(Assignment a, Progress p) {
    return new CheckpointData(a.jobId(), p.step(), p.epoch(), p.stepInEpoch(), a.spec().seed(), a.worldSize(),
        List.of(), List.of(), p.lossSum(), p.correct(), p.ledger());
  }

  /** Waits for the Start of {@code generation}; null if it was stopped first. */
  private Start awaitStart(long generation) throws InterruptedException {
    while (true) {
      if (generation <= stopUpTo) {
        return null;
      }
      Object order = orders.take();
      if (order == Wake.RELEASE) {
        orders.add(Wake.RELEASE); // for the main loop, once this generation has parked
        return null;
      }
      if (order instanceof Start start && start.generation() == generation) {
        return start;
      }
    }
  }

  /**
   * The state transfer of a generation: the source rank sends its encoded state, the others
   * zeros; a rank that lacked the state imports it, one that had it checks that it is the same.
   */
  private CheckpointData receiveState(Assignment a, Start start, CheckpointData state) throws InterruptedException {
    boolean source = start.syncSource() == a.rank();
    float[] buffer;
    if (source) {
      encodeState(a);
      if (payload.length != start.syncBytes()) {
        throw new StateTransferException("rank " + a.rank() + " holds " + payload.length + " bytes of state, the generation expected "
            + start.syncBytes());
      }
      buffer = StateTransfer.encode(payload);
    } else {
      buffer = StateTransfer.blank(start.syncBytes());
    }
    long started = System.nanoTime();
    // A tag below the first training step: the peer's steps must only increase.
    float[] sum = allReduce(a, a.resumeStep() - 1, buffer);
    StateTransfer.Received received;
    try {
      received = StateTransfer.decode(sum);
    } catch (IllegalStateException e) {
      throw new StateTransferException(e.getMessage());
    }
    if (state == null) {
      CheckpointData got = CheckpointStore.fromBytes(a.jobId(), "state of rank " + start.syncSource(), received.payload(),
          received.sha());
      if (got.step() != a.resumeStep()) {
        throw new StateTransferException("rank " + start.syncSource() + " sent the state of step " + got.step()
            + ", the generation resumes at " + a.resumeStep());
      }
      replica.importParameters(got.parameters());
      optimizer.importState(got.optimizerState());
      moved(Progress.of(got));
      payload = received.payload();
      payloadSha = received.sha();
      log.info("job {} generation {}: rank {} received the state of step {} from rank {} ({} bytes, {} ms)", a.jobId(),
          a.generation(), a.rank(), got.step(), start.syncSource(), received.payload().length,
          (System.nanoTime() - started) / 1_000_000);
      return withoutTensors(a, progress);
    }
    if (!source) {
      encodeState(a);
      if (!payloadSha.equals(received.sha())) {
        // Replicas that should be equal are not: this one gives its state up, and the next
        // generation gives it the source's.
        log.error("job {} generation {}: replicas diverged: rank {} holds state {} at step {}, rank {} holds {}", a.jobId(),
            a.generation(), a.rank(), payloadSha, progress.step(), start.syncSource(), received.sha());
        throw new StateTransferException("replicas diverged at step " + progress.step() + ": rank " + a.rank()
            + " differs from rank " + start.syncSource());
      }
    }
    return state;
  }

  /** Encodes the replica's state, unless it is encoded already. */
  private void encodeState(Assignment a) {
    if (payload == null) {
      // No world size in it: ranks that parked in different generations must encode the same
      // state to the same bytes, or the check against the source's checksum would fail.
      CheckpointData full = new CheckpointData(a.jobId(), progress.step(), progress.epoch(), progress.stepInEpoch(),
          a.spec().seed(), 0, replica.exportParameters(), optimizer.exportState(), progress.lossSum(),
          progress.correct(), progress.ledger());
      payload = CheckpointStore.toBytes(full);
      payloadSha = CheckpointStore.checksum(payload);
    }
  }

  /**
   * The generation is over for this rank: it keeps its replica where the last completed step left
   * it, encodes that state (another rank may need it) and tells its worker.
   */
  private boolean park(Assignment a, String failure, boolean retryable) {
    long held = -1;
    int bytes = 0;
    if (replica != null && progress != null) {
      encodeState(a);
      held = progress.step();
      bytes = payload.length;
    }
    worker.tell(new RunEnded(a.generation(), failure, retryable, held, bytes, false));
    return true;
  }

  private void train(Assignment a, CheckpointData resume) throws InterruptedException {
    JobSpec spec = a.spec();
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
    long stepsDone = resume.step();
    // A state whose epoch has all its steps (stepInEpoch == steps) still owes the epoch's report:
    // the loop below evaluates and reports it before going on (a report already recorded is
    // acknowledged and dropped by the coordinator).
    int firstEpoch = resume.epoch();
    long firstStep = stepsDone;
    boolean rankZero = a.rank() == 0;
    // The summed gradient's usual peak in this generation, for the spike check; 0 before a step.
    float typicalPeak = 0;
    for (int epoch = firstEpoch; epoch < spec.epochs() && (stepsDone < lastStep || epoch == firstEpoch && resume.stepInEpoch() == steps); epoch++) {
      int[] permutation = sampler.permutation(epoch);
      // A resumed epoch keeps the sums it had, so its metrics and its ledger cover the whole epoch.
      boolean resumed = epoch == firstEpoch;
      double lossSum = resumed ? resume.epochLossSum() : 0;
      long correct = resumed ? resume.epochCorrect() : 0;
      SampleLedger ledger = resumed ? resume.epochLedger() : SampleLedger.EMPTY;
      long start = System.nanoTime();
      for (int step = resumed ? resume.stepInEpoch() : 0; step < steps && stepsDone < lastStep; step++) {
        if (a.generation() <= stopUpTo) {
          return;
        }
        int[] slice = sampler.slice(permutation, step, a.rank(), a.worldSize());
        ModelReplica.StepResult result = replica.computeGradients(train, slice, flat);
        flat[tail] = (float) result.lossSum();
        flat[tail + 1] = result.correct();
        SampleLedger.writeSlice(slice, flat, tail + 2);
        float[] sum = allReduce(a, stepsDone, flat);
        // One pass over the gradients serves both checks: the peak is NaN or infinite exactly when
        // one of them is (Math.max keeps a NaN).
        float peak = peak(sum, tail);
        int firstBad = firstNonFinite(sum, Float.isFinite(peak) ? tail : 0);
        if (firstBad >= 0) {
          // Applied, a non-finite sum would ruin every replica alike, and the job would still
          // "succeed" with garbage. The generation ends here, loudly (see DivergedException).
          log.error("job {} generation {}: step {} summed to a non-finite value at index {} of {} (loss sum {}, this "
              + "rank's own loss {})", a.jobId(), a.generation(), stepsDone, firstBad, sum.length, sum[tail], result.lossSum());
          throw new DivergedException("step " + stepsDone + " summed to a non-finite value (" + sum[firstBad] + " at index "
              + firstBad + " of " + sum.length + ")");
        }
        if (settings.gradientSpikeFactor() > 0 && typicalPeak > 0 && peak > settings.gradientSpikeFactor() * typicalPeak) {
          // Finite, but far outside this run: applied, it would kill the model as surely as a NaN
          // (seen: one garbled step left a network that predicts one class and still "succeeds").
          log.error("job {} generation {}: step {} summed to a gradient peak of {}, {} times its typical {} (loss sum {}, "
              + "this rank's own loss {})", a.jobId(), a.generation(), stepsDone, peak, peak / typicalPeak, typicalPeak,
              sum[tail], result.lossSum());
          throw new DivergedException(String.format(java.util.Locale.ROOT,
              "step %d summed to a gradient peak of %.4g, %.3g times its typical %.4g (kaon.worker.gradient-spike-factor = %.3g)",
              stepsDone, peak, peak / typicalPeak, typicalPeak, settings.gradientSpikeFactor()));
        }
        typicalPeak = typicalPeak == 0 ? peak : 0.9f * typicalPeak + 0.1f * peak;
        lossSum += sum[tail];
        correct += (long) sum[tail + 1];
        ledger = ledger.plusReduced(sum, tail + 2);
        replica.applyGradients(sum, scale, optimizer);
        if (rankZero && stepsDone == firstStep) {
          // Recovery is measured to here (bench/recovery): the job trains again.
          log.info("job {} generation {}: first step completed (step {}, {} ranks)", a.jobId(), a.generation(),
              stepsDone, a.worldSize());
        }
        stepsDone++;
        moved(new Progress(stepsDone, epoch, step + 1, lossSum, correct, ledger));
        if (rankZero && spec.checkpointEverySteps() > 0 && stepsDone % spec.checkpointEverySteps() == 0 && stepsDone < lastStep) {
          // The copy is the only cost here: encoding and writing happen elsewhere. At the end of an
          // epoch the checkpoint keeps the epoch's sums, so a resumed run can still report it.
          worker.tell(new CheckpointReady(a.generation(), new CheckpointData(
              a.jobId(), stepsDone, epoch, step + 1, spec.seed(), a.worldSize(), replica.exportParameters(),
              optimizer.exportState(), lossSum, correct, ledger)));
        }
        if (rankZero && System.nanoTime() >= nextProgress) {
          nextProgress = System.nanoTime() + settings.progressInterval().toNanos();
          // Through the worker: it knows where the coordinator is now (it may have moved).
          worker.tell(new Progressed(new WorkerReport.StepProgress(
              a.generation(), epoch, step + 1, steps, lossSum / Math.max(1, ledger.samples()))));
        }
      }
      long trainNanos = System.nanoTime() - start;
      LabeledImages test = data.test();
      int from = (int) ((long) test.count() * a.rank() / a.worldSize());
      int to = (int) ((long) test.count() * (a.rank() + 1) / a.worldSize());
      int testCorrect = replica.countCorrect(test, from, to, settings.evalBatch());
      // Every sample of the epoch exactly once: what the ranks consumed, step by step and across
      // generations, against the epoch's plan.
      int stepsOfEpoch = (int) (stepsDone - (long) epoch * steps);
      boolean eachOnce = verifiable && ledger.equals(SampleLedger.ofPlanned(permutation, stepsOfEpoch, spec.globalBatch()));
      if (!eachOnce && verifiable) {
        log.error("job {} epoch {}: the samples used differ from the epoch's plan: used {}, planned {}", a.jobId(),
            epoch + 1, ledger, SampleLedger.ofPlanned(permutation, stepsOfEpoch, spec.globalBatch()));
      }
      worker.tell(new Report(a.generation(), new EpochSums(
          epoch, lossSum, correct, ledger.samples(), eachOnce, testCorrect, to - from, trainNanos, stepsDone)));
    }
    if (!rankZero) {
      worker.tell(new Report(a.generation(), new Finished(replica.digest(), null)));
      return;
    }
    // Rank 0 delivers the model: the file DJL writes, stored by its worker before the digest (the
    // file's sha256, which every rank computes the same way) goes out.
    byte[] model = replica.parametersFile();
    if (!spec.modelOutput().isEmpty()) {
      try {
        Path file = ModelFile.write(settings.modelDir(), spec.modelOutput(), model);
        log.info("job {}: rank 0 wrote the model to {}", a.jobId(), file);
      } catch (java.io.IOException e) {
        throw new StepFailedException("cannot write the model to " + spec.modelOutput() + " under " + settings.modelDir()
            + ": " + e.getMessage());
      }
    }
    worker.tell(new Report(a.generation(), new Finished(CheckpointStore.checksum(model), model)));
  }

  /** The largest magnitude among the first {@code length} of {@code values}. */
  private static float peak(float[] values, int length) {
    float peak = 0;
    for (int i = 0; i < length; i++) {
      peak = Math.max(peak, Math.abs(values[i]));
    }
    return peak;
  }

  /** The index of the first NaN or infinity in {@code values} from {@code from} on, or -1. */
  private static int firstNonFinite(float[] values, int from) {
    for (int i = from; i < values.length; i++) {
      if (!Float.isFinite(values[i])) {
        return i;
      }
    }
    return -1;
  }

  private float[] allReduce(Assignment a, long step, float[] buffer) throws InterruptedException {
    try {
      return org.apache.pekko.actor.typed.javadsl.AskPattern.<AllReducePeer.Command, AllReducePeer.Reduced>askWithStatus(
              a.peer().narrow(),
              replyTo -> new AllReducePeer.Reduce(step, buffer, replyTo),
              PEER_ASK_GUARD,
              scheduler)
          .toCompletableFuture()
          .get(PEER_ASK_GUARD.toMillis(), TimeUnit.MILLISECONDS)
          .buffer();
    } catch (ExecutionException e) {
      throw new RingBrokenException(e.getCause().getMessage());
    } catch (TimeoutException e) {
      throw new RingBrokenException("all-reduce peer of rank " + a.rank() + " did not answer");
    }
  }

  /** The ring failed (a peer missed its deadline, or the generation was stopped): the job can go on. */
  private static final class RingBrokenException extends RuntimeException {
    RingBrokenException(String message) {
      super(message);
    }
  }

  /** A step's sums are not finite: the job diverged, or values were damaged on the way. */
  private static final class DivergedException extends RuntimeException {
    DivergedException(String message) {
      super(message);
    }
  }

  /** The state transfer failed: the job can go on, but this rank's replica cannot be trusted. */
  private static final class StateTransferException extends RuntimeException {
    StateTransferException(String message) {
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
