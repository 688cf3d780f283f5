package kaon.actors.worker;

import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.data.SampleLedger;
import kaon.actors.chaos.RuntimeFaults;
import kaon.actors.metrics.KaonMetrics;
import kaon.actors.training.DivergenceGuard;
import kaon.actors.training.LocalGradientCollector;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.Optimizer;
import kaon.actors.training.Optimizers;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskData;
import kaon.actors.training.TrainingTask;
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
 * <p>The steps themselves are the {@link TrainingLoop}'s. Everything the thread learns goes to its
 * worker as {@link RunEvent}s: when the replica is ready, when a generation ends, the epochs'
 * sums, checkpoints and progress, and the final digest (rank 0's with the trained model).
 */
final class TrainingRun implements Runnable, RunThread {

  private static final Logger log = LoggerFactory.getLogger(TrainingRun.class);

  private enum Wake { STOP, RELEASE }

  private final DeviceSlot slot;
  private final TaskCatalog catalog;
  private final CheckpointStore store;
  private final WorkerSettings settings;
  private final Scheduler scheduler;
  /** The chaos tooling's faults on this node (a slow rank, a poisoned gradient); off unless enabled. */
  private final RuntimeFaults faults;
  private final KaonMetrics metrics;
  private final ActorRef<RunEvent> worker;
  private final BlockingQueue<Object> orders = new LinkedBlockingQueue<>();
  /** Generations up to this one are to stop at their next step boundary. */
  private volatile long stopUpTo = -1;

  // Owned by the thread.
  private TrainingTask task;
  private TaskData data;
  private ModelReplica replica;
  private Optimizer optimizer;
  /** Where the replica is: after the last step every rank completed; null if not known. */
  private TrainingLoop.Position progress;
  /** The replica's state encoded, once asked for; null when it changed since. */
  private byte[] payload;
  private String payloadSha;

  private TrainingRun(
      DeviceSlot slot,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings,
      Scheduler scheduler,
      RuntimeFaults faults,
      KaonMetrics metrics,
      ActorRef<RunEvent> worker) {
    this.faults = faults;
    this.metrics = metrics;
    this.slot = slot;
    this.catalog = catalog;
    this.store = store;
    this.settings = settings;
    this.scheduler = scheduler;
    this.worker = worker;
  }

  /** Starts threads of this node's workers, named after their workers, as daemons. */
  static RunThread.Factory factory(TaskCatalog catalog, CheckpointStore store, WorkerSettings settings, Scheduler scheduler,
      RuntimeFaults faults, KaonMetrics metrics) {
    return (name, device, events) -> {
      TrainingRun run = new TrainingRun(device, catalog, store, settings, scheduler, faults, metrics, events);
      Thread thread = new Thread(run, "kaon-" + name);
      thread.setDaemon(true);
      thread.start();
      return run;
    };
  }

  @Override
  public void assign(Assignment assignment) {
    orders.add(assignment);
  }

  @Override
  public void begin(Start start) {
    orders.add(start);
  }

  @Override
  public void requestStop(long generation) {
    stopUpTo = Math.max(stopUpTo, generation);
    orders.add(Wake.STOP);
  }

  @Override
  public void release() {
    stopUpTo = Long.MAX_VALUE;
    orders.add(Wake.RELEASE);
  }

  @Override
  public void run() {
    try {
      // Before libtorch's first operation here: the threads it starts inherit the nice value.
      String kept = TrainingPriority.lowerCurrentThread(settings.trainingNice());
      if (kept != null) {
        log.info("training thread {} keeps the node's CPU priority: {}", Thread.currentThread().getName(), kept);
      }
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
    // What this thread logs while it runs the generation is the job's (kaon logs).
    org.slf4j.MDC.put(kaon.actors.joblog.JobLog.CONTEXT_KEY, a.jobId());
    try {
      if (a.generation() <= stopUpTo) {
        return park(a, null, true);
      }
      CheckpointData state = prepare(a);
      worker.tell(new RunEvent.ReplicaReady(a.generation(), state == null));
      Start start = awaitStart(a.generation());
      if (start == null) {
        return park(a, null, true);
      }
      if (start.syncSource() >= 0) {
        state = receiveState(a, start, state);
      }
      new TrainingLoop(new TrainingLoop.Generation(a.jobId(), a.spec(), a.generation(), a.rank(), a.worldSize(),
          exchange(a, start), metrics.steps(a.jobId(), transport(a, start))), replica, optimizer, data, settings, faults,
          worker, generation -> generation <= stopUpTo, this::moved)
          .run(state);
    } catch (Exchange.RingBrokenException e) {
      failure = e.getMessage();
      retryable = true;
    } catch (DivergenceGuard.DivergedException e) {
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
    } catch (TrainingLoop.StepFailedException e) {
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
      worker.tell(new RunEvent.RunEnded(a.generation(), failure, retryable, -1, 0, true));
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
      moved(TrainingLoop.Position.of(loaded));
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
    moved(new TrainingLoop.Position(0, 0, 0, 0, 0, SampleLedger.EMPTY));
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
  private void moved(TrainingLoop.Position where) {
    progress = where;
    payload = null;
    payloadSha = null;
  }

  private static CheckpointData withoutTensors(Assignment a, TrainingLoop.Position p) {
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
  /** The metrics' name for how {@code a}'s rank sums with the others. */
  private String transport(Assignment a, Start start) {
    if (a.worldSize() == 1) {
      return "none";
    }
    return start.shared() != null ? "shared-memory" : settings.allReduce().transport().name().toLowerCase(java.util.Locale.ROOT);
  }

  /** How rank {@code a.rank()} sums with the others in the generation {@code start} began. */
  private Exchange exchange(Assignment a, Start start) {
    return start.shared() != null ? Exchange.shared(start.shared(), a.rank()) : Exchange.ring(a.peer(), a.rank(), scheduler);
  }

  private CheckpointData receiveState(Assignment a, Start start, CheckpointData state) throws InterruptedException {
    boolean source = start.syncSource() == a.rank();
    float[] buffer;
    if (source) {
      // The coordinator chose this rank from what it said when surveyed; a run that failed since
      // (a diverged step, a transfer that went wrong) gave that state up. Retryable: the next
      // generation surveys again. A soak found this as a job failed by a NullPointerException.
      if (progress == null || progress.step() != a.resumeStep()) {
        throw new StateTransferException("rank " + a.rank() + " was chosen to send the state of step " + a.resumeStep()
            + " but holds " + (progress == null ? "none" : "that of step " + progress.step()));
      }
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
    float[] sum = exchange(a, start).reduce(a.resumeStep() - 1, buffer).buffer();
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
      moved(TrainingLoop.Position.of(got));
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
    worker.tell(new RunEvent.RunEnded(a.generation(), failure, retryable, held, bytes, false));
    return true;
  }

  /** The state transfer failed: the job can go on, but this rank's replica cannot be trusted. */
  private static final class StateTransferException extends RuntimeException {
    StateTransferException(String message) {
      super(message);
    }
  }
}
