package kaon.actors.worker;

import java.time.Duration;
import java.util.List;
import java.util.TreeMap;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * One worker of one job: owns a device of its node while the job wants it, and runs the job's
 * {@link TrainingRun} on a thread of its own, never on an actor thread. A sharded entity, one per
 * (job, member id); its rank may change from one generation to the next.
 *
 * <p>Protocol with the job's coordinator, which hears from the worker only through {@link
 * WorkerReport}s: {@link Prepare} (take a device, get the replica ready from the members' memory,
 * a checkpoint or the initial parameters, start an {@link AllReducePeer} for the generation) is
 * answered with {@link WorkerReport.Ready}; {@link Begin} brings the ring, has the state sent to the ranks that lack it, and starts the steps;
 * {@link Stop} ends the generation at the next step boundary; {@link AskState} asks which step's
 * state this worker holds once stopped; {@link Reattach} asks whether this rank still trains a
 * generation. A Prepare of a newer generation stops the current one first. Messages of an older
 * generation are ignored.
 *
 * <p>Between generations the device and the training thread stay with the worker, and the thread
 * keeps the replica as the last completed step left it: a worker that survives the loss of
 * another carries on from memory. A {@link Stop} without {@code keepDevice}, or {@link
 * #HOLD_DEVICE} without a new generation, gives both up.
 *
 * <p>Reports that the coordinator persists (epoch reports, checkpoints written, the final
 * digest) go through an outbox and are resent until acknowledged: the coordinator may be
 * restarting (Cassandra down) when they are first sent. Rank 0's final digest goes out only once
 * a {@link ModelWriter} has stored the trained model: a job that succeeded has a model to
 * download. Rank 0 also writes checkpoints, off the training thread, one at a time; while a write
 * is in flight only the newest waiting checkpoint is kept, and failed writes are retried with
 * backoff while training goes on.
 *
 * <p>Nothing survives a crash of the node: the device is released (the {@link NodeAgent} watches
 * its owners), the peer dies with its parent, and the coordinator forms a new generation from the
 * other members.
 */
public final class DeviceWorker extends AbstractBehavior<DeviceWorker.Command> {

  /** Nodes with this role run workers (and own devices). */
  public static final String ROLE = "worker";

  /** Sharding key of worker entities; ids come from {@link #entityId}. */
  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "Worker");

  /** What a worker accepts. */
  public sealed interface Command
      permits Prepare, Begin, Stop, Reattach, AskState, Ack, DeviceAnswer, FromRun, CheckpointWriteDone, RetryCheckpoint,
          ResendOutbox, HoldExpired, ModelReport {}

  /**
   * Get ready to train rank {@code rank} of {@code worldSize} in {@code generation}, starting at
   * {@code resumeStep}: from checkpoint {@code resumeFrom} when it is not empty, else from the
   * members' memory when {@code fromMembers} (this worker's own state if it holds that step,
   * otherwise the state a source rank sends at {@link Begin}), else from the initial parameters.
   */
  public record Prepare(
      String jobId,
      JobSpec spec,
      long generation,
      int rank,
      int worldSize,
      ActorRef<WorkerReport> coordinator,
      String resumeFrom,
      long resumeStep,
      boolean fromMembers)
      implements Command, KryoWireMessage {}

  /**
   * Every rank of {@code generation} is ready; {@code ring} holds their peers in rank order. When
   * a rank lacks the state, {@code syncSource} is the rank that sends it to all ({@code
   * syncBytes} long) before the first step; else -1.
   */
  public record Begin(long generation, List<ActorRef<RingMessage>> ring, int syncSource, int syncBytes)
      implements Command, KryoWireMessage {}

  /**
   * Which step's state this worker holds in memory, once its run of {@code generation} (or an
   * older one) has stopped; answered with {@link HeldState}.
   */
  public record AskState(long generation, ActorRef<HeldState> replyTo) implements Command, KryoWireMessage {}

  /**
   * The answer to {@link AskState}: the state of step {@code step} ({@code bytes} encoded), or
   * {@code step} -1 when this worker holds none.
   */
  public record HeldState(String entityId, long step, int bytes) implements KryoWireMessage {}

  /**
   * Stop training {@code generation} (and any older one). {@code keepDevice}: the job is forming
   * a new generation that this rank may be part of, so the device stays with it for a while (see
   * {@link #HOLD_DEVICE}) instead of going back to the node's free pool.
   */
  public record Stop(long generation, String reason, boolean keepDevice) implements Command, KryoWireMessage {}

  /** From a recovered coordinator: answer whether this rank still trains {@code generation}. */
  public record Reattach(long generation, ActorRef<WorkerReport> coordinator) implements Command, KryoWireMessage {}

  /** The coordinator persisted what report {@code seq} of {@code generation} led to. */
  public record Ack(long generation, long seq) implements Command, KryoWireMessage {}

  private record DeviceAnswer(NodeAgent.DeviceReply reply, String error) implements Command {}

  /** What the worker's training thread tells it (see {@link TrainingRun.Event}). */
  private record FromRun(TrainingRun.Event event) implements Command {}

  private record CheckpointWriteDone(long generation, CheckpointData data, CheckpointInfo info, String error)
      implements Command {}

  private record RetryCheckpoint(long generation) implements Command {}

  private enum ResendOutbox implements Command { INSTANCE }

  private enum HoldExpired implements Command { INSTANCE }

  private record ModelReport(ModelWriter.Report report) implements Command {}

  /**
   * The entity id of worker {@code member} of job {@code jobId}. Member ids are stable: a worker
   * keeps its id (and its state) through generations while its rank may change.
   */
  public static String entityId(String jobId, int member) {
    return entityIdPrefix(jobId) + member;
  }

  /** What the entity ids of job {@code jobId}'s workers start with (device owners in a census). */
  public static String entityIdPrefix(String jobId) {
    return jobId + "-worker-";
  }

  /** Registers worker entities with sharding on this node. */
  public static void init(
      ActorSystem<?> system,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings) {
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY,
            entity -> create(entity.getEntityId(), entity.getShard(), nodeAgent, catalog, store, settings))
        // A training worker gets no message for as long as its thread trains (the thread talks to
        // its peer and coordinator directly); idle-time passivation would stop it mid-job. It
        // passivates itself once its run has ended.
        .withSettings(workerShardingSettings(system))
        // One shard per worker, so that each is placed on its own by the device-aware strategy.
        .withMessageExtractor(new OneShardPerEntity<>())
        .withAllocationStrategy(new DeviceAwareAllocation(Adapter.toClassic(system)))
        .withRole(ROLE));
  }

  private static ClusterShardingSettings workerShardingSettings(ActorSystem<?> system) {
    ClusterShardingSettings settings = ClusterShardingSettings.create(system).withNoPassivationStrategy();
    // DeviceAwareAllocation moves only workers left without a device; looking every 2 s instead of
    // 10 lets a job that re-forms find them on a node with a free device at its next attempt.
    return settings.withTuningParameters(settings.tuningParameters().withRebalanceInterval(REBALANCE_INTERVAL));
  }

  private static final Duration REBALANCE_INTERVAL = Duration.ofSeconds(2);

  /** The worker entity {@code entityId}. */
  public static Behavior<Command> create(
      String entityId,
      ActorRef<ClusterSharding.ShardCommand> shard,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings) {
    return Behaviors.withStash(16, stash -> Behaviors.setup(context -> Behaviors.withTimers(
        timers -> new DeviceWorker(context, stash, timers, entityId, shard, nodeAgent, catalog, store, settings))));
  }

  private static final Duration DEVICE_ASK_TIMEOUT = Duration.ofSeconds(10);
  /**
   * How long a device stays with a rank between generations. Released at the end of a run and
   * taken again by the next Prepare, it could be granted meanwhile to another rank placed on this
   * node (a rank whose node died), and one of the two would find no device; while a job re-forms,
   * its ranks keep what they had. A job that drops this rank lets it go with a plain Stop.
   */
  static final Duration HOLD_DEVICE = Duration.ofSeconds(60);
  /** How often unacknowledged reports are sent again. */
  private static final Duration RESEND_INTERVAL = Duration.ofSeconds(3);

  private final StashBuffer<Command> stash;
  private final TimerScheduler<Command> timers;
  private final String entityId;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final ActorRef<NodeAgent.Command> nodeAgent;
  private final TaskCatalog catalog;
  private final CheckpointStore store;
  private final WorkerSettings settings;

  /** The generation being prepared or trained, or null when idle. */
  private Prepare assignment;
  private DeviceSlot device;
  private ActorRef<RingMessage> peer;
  /** The current generation's ring has begun its steps (a Begin came). */
  private boolean begun;
  /** The training thread; it lives as long as the device is held, and keeps the replica's state. */
  private TrainingRun run;
  /** The step whose state the thread holds while no generation runs (-1: none), and its size. */
  private long heldStep = -1;
  private int heldBytes;
  /** Asks for the held state that wait for the current run to stop. */
  private final List<ActorRef<HeldState>> stateAsks = new java.util.ArrayList<>();
  private boolean stopping;
  /** The run being stopped keeps its device for the next generation. */
  private boolean keepDevice;
  /** Newest generation whose run ended here; its messages are late and ignored. */
  private long finishedGeneration;
  /** Reports sent but not yet acknowledged, by sequence number (of {@link #outboxGeneration}). */
  private final TreeMap<Long, WorkerReport> outbox = new TreeMap<>();
  private long outboxGeneration;
  private int outboxRank;
  /**
   * Where every message for the job goes: the coordinator of the newest Prepare, moved by a
   * {@link Reattach} when the job's entity has started again elsewhere (its node died). Prepare's
   * own reference would then be dead, and a failure sent to it would leave the job waiting.
   */
  private ActorRef<WorkerReport> coordinator;
  private long nextSeq;
  /** How the run of the outbox's generation failed here, or null: said again to a recovered coordinator. */
  private WorkerReport.Failed failureReport;
  /** Checkpoint writing (rank 0): the one being written, the newest waiting, the retry delay. */
  private CheckpointData writing;
  private CheckpointData waiting;
  private Duration retryDelay;
  private boolean checkpointProblem;
  /** Rank 0 storing the trained model of the outbox's generation; null when none is. */
  private ActorRef<ModelWriter.Command> modelWriter;
  private final ActorRef<ModelWriter.Report> modelReports;
  /** Where the training thread's events come in; a thread may tell an adapter. */
  private final ActorRef<TrainingRun.Event> runEvents;
  private String outboxJobId;

  private DeviceWorker(
      ActorContext<Command> context,
      StashBuffer<Command> stash,
      TimerScheduler<Command> timers,
      String entityId,
      ActorRef<ClusterSharding.ShardCommand> shard,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings) {
    super(context);
    this.stash = stash;
    this.timers = timers;
    this.entityId = entityId;
    this.shard = shard;
    this.nodeAgent = nodeAgent;
    this.catalog = catalog;
    this.store = store;
    this.settings = settings;
    this.modelReports = context.messageAdapter(ModelWriter.Report.class, ModelReport::new);
    this.runEvents = context.messageAdapter(TrainingRun.Event.class, FromRun::new);
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Prepare.class, this::onPrepare)
        .onMessage(DeviceAnswer.class, this::onDeviceAnswer)
        .onMessage(FromRun.class, from -> onRunEvent(from.event()))
        .onMessage(Begin.class, this::onBegin)
        .onMessage(Stop.class, this::onStop)
        .onMessage(Reattach.class, this::onReattach)
        .onMessage(AskState.class, this::onAskState)
        .onMessage(Ack.class, this::onAck)
        .onMessageEquals(ResendOutbox.INSTANCE, this::resendOutbox)
        .onMessageEquals(HoldExpired.INSTANCE, this::onHoldExpired)
        .onMessage(CheckpointWriteDone.class, this::onCheckpointWriteDone)
        .onMessage(RetryCheckpoint.class, this::onRetryCheckpoint)
        .onMessage(ModelReport.class, this::onModelReport)
        .onSignal(PostStop.class, signal -> onPostStop())
        .build();
  }

  private Behavior<Command> onRunEvent(TrainingRun.Event event) {
    if (event instanceof TrainingRun.ReplicaReady ready) {
      return onReplicaReady(ready);
    } else if (event instanceof TrainingRun.RunEnded ended) {
      return onRunEnded(ended);
    } else if (event instanceof TrainingRun.Report report) {
      return onReport(report);
    } else if (event instanceof TrainingRun.CheckpointReady ready) {
      return onCheckpointReady(ready);
    }
    return onProgressed((TrainingRun.Progressed) event);
  }

  // ---------------------------------------------------------------- life of a run

  private Behavior<Command> onPrepare(Prepare prepare) {
    if (prepare.generation() <= finishedGeneration) {
      return this;
    }
    if (assignment != null) {
      if (prepare.generation() <= assignment.generation()) {
        return this;
      }
      // A newer generation: end the current run first, then prepare (see onRunEnded).
      stash.stash(prepare);
      stopCurrent("superseded by generation " + prepare.generation(), true);
      return this;
    }
    assignment = prepare;
    begun = false;
    stopping = false;
    keepDevice = false;
    startOutbox(prepare);
    if (device != null) {
      // Held since the previous generation: no need to ask the node agent again.
      timers.cancel(HoldExpired.INSTANCE);
      return onDeviceAnswer(new DeviceAnswer(new NodeAgent.DeviceGranted(device), null));
    }
    getContext().ask(
        NodeAgent.DeviceReply.class,
        nodeAgent,
        DEVICE_ASK_TIMEOUT,
        replyTo -> new NodeAgent.AcquireDevice(entityId, getContext().getSelf(), replyTo),
        (reply, error) -> new DeviceAnswer(reply, error == null ? null : error.getMessage()));
    return this;
  }

  private Behavior<Command> onDeviceAnswer(DeviceAnswer answer) {
    if (assignment == null || stopping) {
      // Stopped while the device was being granted: give it back at once (unless the job
      // re-forms and this rank may be in the next generation).
      if (answer.reply() instanceof NodeAgent.DeviceGranted granted && keepDevice) {
        device = granted.slot();
      } else {
        releaseDevice();
      }
      return finishStopping();
    }
    if (answer.reply() instanceof NodeAgent.DeviceGranted granted) {
      device = granted.slot();
      if (run == null) {
        run = new TrainingRun(device, catalog, store, settings, getContext().getSystem().scheduler(), runEvents);
        Thread thread = new Thread(run, "kaon-" + entityId);
        thread.setDaemon(true);
        thread.start();
      }
      Prepare a = assignment;
      peer = getContext().spawn(
          AllReducePeer.create(a.jobId(), a.generation(), a.rank(), a.worldSize(), settings.allReduce()),
          "allreduce-" + a.generation());
      heldStep = -1;
      run.assign(new TrainingRun.Assignment(a.jobId(), a.spec(), a.generation(), a.rank(), a.worldSize(),
          peer, a.resumeFrom(), a.resumeStep(), a.fromMembers()));
      return this;
    }
    String reason = answer.reply() instanceof NodeAgent.NoFreeDevice none
        ? none.reason()
        : "no answer from the node agent: " + answer.error();
    failureReport = new WorkerReport.Failed(
        assignment.generation(), assignment.rank(), "no device for rank " + assignment.rank() + ": " + reason, true, true);
    coordinator.tell(failureReport);
    assignment = null;
    return this;
  }

  private Behavior<Command> onReplicaReady(TrainingRun.ReplicaReady ready) {
    if (isCurrent(ready.generation()) && !stopping) {
      coordinator.tell(new WorkerReport.Ready(
          assignment.generation(), assignment.rank(), peer, device.id(), ready.needsState()));
    }
    return this;
  }

  private Behavior<Command> onBegin(Begin begin) {
    if (isCurrent(begin.generation()) && peer != null && !stopping) {
      begun = true;
      peer.tell(new AllReducePeer.Connect(begin.ring()));
      run.begin(new TrainingRun.Start(begin.generation(), begin.syncSource(), begin.syncBytes()));
    }
    return this;
  }

  private Behavior<Command> onStop(Stop stop) {
    if (assignment == null) {
      if (!stop.keepDevice()) {
        releaseDevice();
        if (!reportsPending()) {
          passivate();
        }
      } else if (device != null) {
        // The job is still forming its next generation (it may wait below its minimum for a
        // while): the device and the state stay with this worker for as long as it is asked to.
        timers.startSingleTimer(HoldExpired.INSTANCE, HOLD_DEVICE);
      }
    } else if (stop.generation() >= assignment.generation()) {
      stopCurrent(stop.reason(), stop.keepDevice());
    }
    return this;
  }

  private Behavior<Command> onHoldExpired() {
    if (assignment == null && device != null) {
      getContext().getLog().info("{}: no new generation came within {} s; giving device {} back",
          entityId, HOLD_DEVICE.toSeconds(), device.id());
      releaseDevice();
      if (!reportsPending()) {
        passivate();
      }
    }
    return this;
  }

  private void releaseDevice() {
    timers.cancel(HoldExpired.INSTANCE);
    if (run != null) {
      // The state goes with the device: a worker without one cannot train it.
      run.release();
      run = null;
    }
    heldStep = -1;
    heldBytes = 0;
    nodeAgent.tell(new NodeAgent.ReleaseDevice(entityId));
    device = null;
  }

  private Behavior<Command> onAskState(AskState ask) {
    if (assignment != null && ask.generation() >= assignment.generation()) {
      // Answered once the run has stopped (the coordinator sent Stop first): only then is the
      // step final.
      stateAsks.add(ask.replyTo());
    } else {
      ask.replyTo().tell(new HeldState(entityId, heldStep, heldBytes));
      if (assignment == null && device == null && !reportsPending()) {
        // Started by this very question (the worker had left memory): nothing to keep it here.
        passivate();
      }
    }
    return this;
  }

  private Behavior<Command> onReattach(Reattach reattach) {
    // Only a rank whose ring has begun trains: one still getting ready waits for a Begin that the
    // recovered coordinator will never send (it does not know who was ready), so it says it does
    // not run, and the coordinator forms the generation again.
    boolean training = isCurrent(reattach.generation()) && peer != null && begun && !stopping;
    int rank = rankOf();
    if (reattach.generation() == outboxGeneration) {
      // The job's entity started again (elsewhere, if its node died): whatever this rank still
      // has to say about the generation, a failure included, goes to where it is now. (The
      // current generation, if any, is the outbox's: a Prepare starts both.)
      coordinator = reattach.coordinator();
    }
    if (training) {
      // The coordinator restarted: it may have lost what it had not persisted yet.
      reattach.coordinator().tell(new WorkerReport.Reattached(reattach.generation(), rank));
      resendOutbox();
    } else if (reattach.generation() == outboxGeneration && (reportsPending() || failureReport != null)) {
      // The run is over but its last reports are not acknowledged (or rank 0's not sent) yet:
      // they still count. A failure may have gone to the coordinator that is gone: it is said
      // again, so that the job re-forms for the reason it has to, not after a silent wait.
      reattach.coordinator().tell(new WorkerReport.Reattached(reattach.generation(), rank));
      resendOutbox();
      if (failureReport != null) {
        coordinator.tell(failureReport);
      }
    } else {
      reattach.coordinator().tell(new WorkerReport.NotRunning(reattach.generation(), rank));
      if (assignment == null && device == null) {
        passivate();
      }
    }
    return this;
  }

  private void stopCurrent(String reason, boolean keep) {
    stopping = true;
    keepDevice = keep;
    if (peer != null) {
      getContext().getLog().info("{}: stopping generation {} ({})", entityId, assignment.generation(), reason);
      // A step waiting for its all-reduce ends now rather than at the round's deadline.
      peer.tell(new AllReducePeer.Abort("generation " + assignment.generation() + " stopped: " + reason));
      run.requestStop(assignment.generation());
    }
  }

  private Behavior<Command> onRunEnded(TrainingRun.RunEnded ended) {
    if (!isCurrent(ended.generation())) {
      return this;
    }
    if (ended.failure() != null && !stopping) {
      failureReport = new WorkerReport.Failed(
          assignment.generation(), assignment.rank(), ended.failure(), ended.retryable());
      coordinator.tell(failureReport);
    }
    getContext().stop(peer);
    peer = null;
    if (ended.threadEnded()) {
      run = null;
    }
    heldStep = ended.heldStep();
    heldBytes = ended.stateBytes();
    if (stopping && !keepDevice || ended.failure() != null && !ended.retryable()) {
      releaseDevice();
    } else {
      // Kept for the next generation, with the state: a run that finished keeps both until the
      // coordinator's Stop too, since the job may still re-form (a rank that failed at the very end).
      timers.startSingleTimer(HoldExpired.INSTANCE, HOLD_DEVICE);
    }
    stateAsks.forEach(ask -> ask.tell(new HeldState(entityId, heldStep, heldBytes)));
    stateAsks.clear();
    finishedGeneration = Math.max(finishedGeneration, assignment.generation());
    return finishStopping();
  }

  /**
   * Idle again: prepare a newer generation if one is waiting. A stopped worker leaves memory; one
   * that finished its run waits for the coordinator's {@link Stop} (and its acknowledgements).
   */
  private Behavior<Command> finishStopping() {
    boolean stopped = stopping && device == null;
    assignment = null;
    begun = false;
    stopping = false;
    keepDevice = false;
    if (!stash.isEmpty()) {
      return stash.unstashAll(this);
    }
    if (stopped) {
      passivate();
    }
    return this;
  }

  // ---------------------------------------------------------------- reports through the outbox

  private void startOutbox(Prepare prepare) {
    outbox.clear();
    if (modelWriter != null) {
      getContext().stop(modelWriter);
      modelWriter = null;
    }
    outboxJobId = prepare.jobId();
    outboxGeneration = prepare.generation();
    outboxRank = prepare.rank();
    coordinator = prepare.coordinator();
    nextSeq = 0;
    failureReport = null;
    writing = null;
    waiting = null;
    checkpointProblem = false;
    timers.cancel(RetryCheckpoint.class);
  }

  private Behavior<Command> onReport(TrainingRun.Report report) {
    if (report.generation() != outboxGeneration) {
      return this;
    }
    if (report.body() instanceof TrainingRun.Finished f && f.model() != null) {
      // The digest waits for the model to be stored (onModelReport).
      modelWriter = getContext().spawn(ModelWriter.create(store, outboxJobId, outboxGeneration, f.digest(), f.model(),
          modelReports), "model-writer-" + outboxGeneration);
      return this;
    }
    long seq = nextSeq++;
    int rank = rankOf();
    WorkerReport message;
    if (report.body() instanceof TrainingRun.EpochSums e) {
      message = new WorkerReport.EpochReport(outboxGeneration, rank, seq, e.epoch(), e.lossSum(), e.correct(),
          e.examples(), e.eachSampleOnce(), e.testCorrect(), e.testExamples(), e.trainNanos(), e.stepsDone());
    } else {
      message = new WorkerReport.Finished(outboxGeneration, rank, seq, ((TrainingRun.Finished) report.body()).digest());
    }
    send(seq, message);
    return this;
  }

  private Behavior<Command> onProgressed(TrainingRun.Progressed progressed) {
    if (progressed.progress().generation() == outboxGeneration) {
      coordinator.tell(progressed.progress());
    }
    return this;
  }

  private Behavior<Command> onModelReport(ModelReport model) {
    if (model.report() instanceof ModelWriter.Failing failing && failing.generation() == outboxGeneration) {
      coordinator.tell(new WorkerReport.CheckpointHealth(outboxGeneration, rankOf(), failing.problem()));
    } else if (model.report() instanceof ModelWriter.Stored stored && stored.generation() == outboxGeneration) {
      modelWriter = null;
      if (stored.recovered()) {
        coordinator.tell(new WorkerReport.CheckpointHealth(outboxGeneration, rankOf(), ""));
      }
      send(nextSeq, new WorkerReport.Finished(outboxGeneration, rankOf(), nextSeq, stored.digest()));
      nextSeq++;
    }
    return this;
  }

  /** Reports the coordinator has not acknowledged yet, or rank 0's digest waiting for its model. */
  private boolean reportsPending() {
    return !outbox.isEmpty() || modelWriter != null;
  }

  private void send(long seq, WorkerReport message) {
    outbox.put(seq, message);
    coordinator.tell(message);
    if (!timers.isTimerActive(ResendOutbox.INSTANCE)) {
      timers.startTimerWithFixedDelay(ResendOutbox.INSTANCE, RESEND_INTERVAL);
    }
  }

  private Behavior<Command> onAck(Ack ack) {
    if (ack.generation() == outboxGeneration) {
      outbox.remove(ack.seq());
      if (outbox.isEmpty()) {
        timers.cancel(ResendOutbox.INSTANCE);
      }
    }
    return this;
  }

  private Behavior<Command> resendOutbox() {
    outbox.values().forEach(coordinator::tell);
    return this;
  }

  // ---------------------------------------------------------------- checkpoints (rank 0)

  private Behavior<Command> onCheckpointReady(TrainingRun.CheckpointReady ready) {
    if (ready.generation() != outboxGeneration) {
      return this;
    }
    if (writing != null) {
      // One write at a time; a newer checkpoint makes an older waiting one pointless.
      waiting = ready.data();
    } else {
      write(ready.data());
    }
    return this;
  }

  private void write(CheckpointData data) {
    writing = data;
    long generation = outboxGeneration;
    getContext().pipeToSelf(store.write(data), (info, error) -> new CheckpointWriteDone(
        generation, data, info, error == null ? null : CheckpointStore.rootMessage(error)));
  }

  private Behavior<Command> onCheckpointWriteDone(CheckpointWriteDone done) {
    if (done.generation() != outboxGeneration) {
      return this;
    }
    if (done.error() == null) {
      writing = null;
      retryDelay = null;
      if (checkpointProblem) {
        checkpointProblem = false;
        coordinator.tell(new WorkerReport.CheckpointHealth(outboxGeneration, rankOf(), ""));
      }
      send(nextSeq, new WorkerReport.CheckpointWritten(outboxGeneration, rankOf(), nextSeq, done.info()));
      nextSeq++;
      if (waiting != null) {
        CheckpointData next = waiting;
        waiting = null;
        write(next);
      }
      return this;
    }
    retryDelay = retryDelay == null ? store.settings().retryMin() : min(retryDelay.multipliedBy(2), store.settings().retryMax());
    getContext().getLog().warn("{}: checkpoint at step {} not written ({}); retrying in {} ms",
        entityId, done.data().step(), done.error(), retryDelay.toMillis());
    if (!checkpointProblem) {
      checkpointProblem = true;
      coordinator.tell(new WorkerReport.CheckpointHealth(outboxGeneration, rankOf(),
          "checkpoint writes failing since " + java.time.Instant.now() + " (" + done.error() + "); retrying with backoff"));
    }
    timers.startSingleTimer(RetryCheckpoint.class, new RetryCheckpoint(outboxGeneration), retryDelay);
    return this;
  }

  private Behavior<Command> onRetryCheckpoint(RetryCheckpoint retry) {
    if (retry.generation() == outboxGeneration && writing != null) {
      // Retry the newest state we have: a waiting checkpoint supersedes the failed one.
      CheckpointData next = waiting != null ? waiting : writing;
      waiting = null;
      write(next);
    }
    return this;
  }

  // ---------------------------------------------------------------- helpers

  private boolean isCurrent(long generation) {
    return assignment != null && generation == assignment.generation();
  }

  /** The rank this worker has in the generation of its outbox (ranks change between generations). */
  private int rankOf() {
    return outboxRank;
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  private void passivate() {
    shard.tell(new ClusterSharding.Passivate<>(getContext().getSelf()));
  }

  private Behavior<Command> onPostStop() {
    if (run != null) {
      run.release();
    }
    if (peer != null) {
      boolean shuttingDown = CoordinatedShutdown.get(getContext().getSystem()).getShutdownReason().isPresent();
      if (!stopping && !shuttingDown) {
        // Stopped from outside while the node stays up (a shard moved): the job must not wait
        // for a rank that is gone. On shutdown the job is meant to resume later, not to fail.
        coordinator.tell(new WorkerReport.Failed(
            assignment.generation(), assignment.rank(), "worker " + entityId + " stopped while training", true));
      }
    }
    return this;
  }
}
