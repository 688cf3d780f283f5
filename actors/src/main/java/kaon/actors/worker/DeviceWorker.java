package kaon.actors.worker;

import java.util.ArrayList;
import java.util.List;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.RingEdge;
import kaon.actors.allreduce.SharedReduction;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.training.JobSpec;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * One worker of one job: owns a device of its node while the job wants it, and runs the job's
 * {@link TrainingRun} on a thread of its own, never on an actor thread. A sharded entity, one per
 * (job, member id); its rank may change from one generation to the next.
 *
 * <p>Protocol with the job's coordinator, which hears from the worker only through {@link
 * WorkerReport}s: {@link Prepare} (take a device, get the replica ready from the members' memory,
 * a checkpoint or the initial parameters, start an {@link AllReducePeer} for the generation) is
 * answered with {@link WorkerReport.Ready}; {@link Begin} brings the ring, has the state sent to
 * the ranks that lack it, and starts the steps; {@link Stop} ends the generation at the next step
 * boundary; {@link AskState} asks which step's state this worker holds once stopped; {@link
 * Reattach} asks whether this rank still trains a generation. A Prepare of a newer generation
 * stops the current one first; messages of an older generation are ignored.
 *
 * <p>The worker is in one state at a time, each a behavior of its own: {@link #idle}, {@link
 * #acquiring} a device, {@link #preparing} the replica, {@link #training}, {@link #stopping}.
 * Between generations the device and its thread stay with the worker ({@link HeldDevice}), with
 * the replica as the last completed step left it: a worker that survives the loss of another
 * carries on from memory. A {@link Stop} without {@code keepDevice}, or {@code
 * kaon.worker.hold-device} without a new generation, gives both up. Reports go through its {@link
 * Outbox}, which resends what the coordinator persists until it is acknowledged, and whose
 * children write rank 0's checkpoints and trained model.
 *
 * <p>Nothing survives a crash of the node: the device is released (the {@link NodeAgent} watches
 * its owners), the peer dies with its parent, and the coordinator forms a new generation from the
 * other members.
 */
public final class DeviceWorker {

  /** What a worker accepts. */
  public sealed interface Command
      permits Prepare, Begin, Stop, Reattach, AskState, Ack, DeviceAnswer, FromRun, CheckpointOutcome, ResendOutbox,
          HoldExpired, ModelReport, EdgeNews {}

  /**
   * Get ready to train rank {@code rank} of {@code worldSize} in {@code generation}, starting at
   * {@code resumeStep}: from checkpoint {@code resumeFrom} when it is not empty, else from the
   * members' memory when {@code fromMembers} (this worker's own state if it holds that step,
   * otherwise the state a source rank sends at {@link Begin}), else from the initial parameters.
   */
  public record Prepare(String jobId, JobSpec spec, long generation, int rank, int worldSize,
      ActorRef<WorkerReport> coordinator, String resumeFrom, long resumeStep, boolean fromMembers)
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
   * a new generation that this rank may be part of, so the device stays with it for a while
   * ({@code kaon.worker.hold-device}) instead of going back to the node's free pool.
   */
  public record Stop(long generation, String reason, boolean keepDevice) implements Command, KryoWireMessage {}

  /** From a recovered coordinator: answer whether this rank still trains {@code generation}. */
  public record Reattach(long generation, ActorRef<WorkerReport> coordinator) implements Command, KryoWireMessage {}

  /** The coordinator persisted what report {@code seq} of {@code generation} led to. */
  public record Ack(long generation, long seq) implements Command, KryoWireMessage {}

  // The worker's own messages: answers, adapted news of its thread, writers and peer, and timers.
  private record DeviceAnswer(NodeAgent.DeviceReply reply, String error) implements Command {}
  /** What the worker's training thread tells it (see {@link RunEvent}). */
  private record FromRun(RunEvent event) implements Command {}
  private record CheckpointOutcome(CheckpointWriter.Outcome outcome) implements Command {}
  private record ModelReport(ModelWriter.Report report) implements Command {}
  private enum ResendOutbox implements Command { INSTANCE }
  private enum HoldExpired implements Command { INSTANCE }
  /** How the peer's chunks reach the next rank changed. */
  private record EdgeNews(RingEdge.EdgeChanged changed) implements Command {}

  /** Worker {@code entityId}; {@code shard} and {@code throughSharding} see it out ({@link Passivation}). */
  static Behavior<Command> create(String entityId, ActorRef<ClusterSharding.ShardCommand> shard,
      java.util.function.Consumer<Command> throughSharding, ActorRef<NodeAgent.Command> nodeAgent,
      RunThread.Factory threads, CheckpointStore store, WorkerSettings settings) {
    return Behaviors.withStash(16, stash -> Behaviors.setup(context -> Behaviors.withTimers(timers ->
        new DeviceWorker(context, stash, timers, entityId, new Passivation<>(shard, context.getSelf(), throughSharding),
            nodeAgent, threads, store, settings).idle())));
  }

  private final ActorContext<Command> context;
  private final StashBuffer<Command> stash;
  private final TimerScheduler<Command> timers;
  private final String entityId;
  private final Passivation<Command> passivation;
  private final ActorRef<NodeAgent.Command> nodeAgent;
  private final WorkerSettings settings;
  /** What this worker says to the coordinator about the generation of its newest Prepare. */
  private final Outbox outbox;
  /** The device this worker holds, its thread and state. */
  private final HeldDevice device;
  /** The thread and the peer of the generation being prepared, trained or stopped (else null, not running). */
  private RunThread run;
  private final RingPeer peer;
  /** Newest generation whose run ended here; its messages are late and ignored. */
  private long finishedGeneration;
  /** Asks for the held state that wait for the current run to stop: only then is its step final. */
  private final List<ActorRef<HeldState>> stateAsks = new ArrayList<>();

  private DeviceWorker(ActorContext<Command> context, StashBuffer<Command> stash, TimerScheduler<Command> timers,
      String entityId, Passivation<Command> passivation, ActorRef<NodeAgent.Command> nodeAgent,
      RunThread.Factory threads, CheckpointStore store, WorkerSettings settings) {
    this.context = context;
    this.stash = stash;
    this.timers = timers;
    this.entityId = entityId;
    this.passivation = passivation;
    this.nodeAgent = nodeAgent;
    this.settings = settings;
    this.outbox = new Outbox(context, store, context.messageAdapter(ModelWriter.Report.class, ModelReport::new),
        context.messageAdapter(CheckpointWriter.Outcome.class, CheckpointOutcome::new));
    this.device = new HeldDevice(entityId, nodeAgent, threads, context.messageAdapter(RunEvent.class, FromRun::new));
    this.peer = new RingPeer(context, settings.allReduce(), context.messageAdapter(RingEdge.EdgeChanged.class, EdgeNews::new));
  }

  // ---------------------------------------------------------------- states

  /** No generation: the worker may hold a device, and the state of its last run, for the next one. */
  private Behavior<Command> idle() {
    return common()
        .onMessage(Prepare.class, prepare -> passivation.handedBack(prepare) ? Behaviors.same() : start(prepare))
        .onMessage(Stop.class, stop -> {
          if (!stop.keepDevice()) {
            releaseDevice();
            passivateUnlessPending();
          } else if (device.held()) {
            // The job is still forming its next generation (it may wait below its minimum).
            timers.startSingleTimer(HoldExpired.INSTANCE, settings.holdDevice());
          }
          return Behaviors.same();
        })
        .onMessage(HoldExpired.class, expired -> {
          if (device.held()) {
            context.getLog().info("{}: no new generation came within {} s; giving device {} back", entityId,
                settings.holdDevice().toSeconds(), device.id());
            releaseDevice();
            passivateUnlessPending();
          }
          return Behaviors.same();
        })
        .onMessage(AskState.class, ask -> {
          ask.replyTo().tell(new HeldState(entityId, device.heldStep(), device.heldBytes()));
          if (!device.held()) {
            passivateUnlessPending(); // started by this very question: nothing to keep it here
          }
          return Behaviors.same();
        })
        .onMessage(Reattach.class, reattach -> reattached(reattach, false, true))
        .onMessage(Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, signal -> released())
        .build();
  }

  private Behavior<Command> start(Prepare prepare) {
    if (prepare.generation() <= finishedGeneration) {
      return Behaviors.same();
    }
    outbox.start(prepare.jobId(), prepare.generation(), prepare.rank(), prepare.coordinator());
    if (device.held()) {
      // Held since the previous generation: no need to ask the node agent again.
      timers.cancel(HoldExpired.INSTANCE);
      return prepareReplica(prepare);
    }
    context.ask(NodeAgent.DeviceReply.class, nodeAgent, settings.deviceAskTimeout(),
        replyTo -> new NodeAgent.AcquireDevice(entityId, context.getSelf(), replyTo),
        (reply, error) -> new DeviceAnswer(reply, error == null ? null : error.getMessage()));
    return acquiring(prepare);
  }

  /** Waiting for the node agent to grant a device for {@code a}. */
  private Behavior<Command> acquiring(Prepare a) {
    return active(a)
        .onMessage(DeviceAnswer.class, answer -> {
          if (answer.reply() instanceof NodeAgent.DeviceGranted granted) {
            device.granted(granted.slot());
            return prepareReplica(a);
          }
          String reason = answer.reply() instanceof NodeAgent.NoFreeDevice none ? none.reason()
              : "no answer from the node agent: " + answer.error();
          outbox.failed(new WorkerReport.Failed(a.generation(), a.rank(), "no device for rank " + a.rank() + ": " + reason,
              true, true));
          return idleAgain();
        })
        .onMessage(Stop.class, stop -> stop.generation() >= a.generation(), stop -> stopping(a, stop.keepDevice()))
        .onMessage(Reattach.class, reattach -> reattached(reattach, false, false))
        .onMessage(Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, signal -> released())
        .build();
  }

  /** With the device: the thread readies the replica for {@code a}, and its peer starts. */
  private Behavior<Command> prepareReplica(Prepare a) {
    ActorRef<RingMessage> ringEnd = peer.start(a.jobId(), a.generation(), a.rank(), a.worldSize());
    run = device.assign(new RunThread.Assignment(a.jobId(), a.spec(), a.generation(), a.rank(), a.worldSize(), ringEnd,
        a.resumeFrom(), a.resumeStep(), a.fromMembers()));
    return preparing(a);
  }

  /** The replica of {@code a} is being readied (then the coordinator hears it is), until the ring begins. */
  private Behavior<Command> preparing(Prepare a) {
    return running(a)
        .onMessage(FromRun.class, from -> from.event() instanceof RunEvent.ReplicaReady ready
            && ready.generation() == a.generation(), from -> {
          outbox.tell(new WorkerReport.Ready(a.generation(), a.rank(), peer.ref(), device.id(),
              ((RunEvent.ReplicaReady) from.event()).needsState()));
          outbox.tell(peer.placed(a.generation(), a.rank(), device.id()));
          return Behaviors.same();
        })
        .onMessage(Begin.class, begin -> begin.generation() == a.generation(), begin -> {
          SharedReduction shared = peer.connect(begin.ring());
          run.begin(new RunThread.Start(begin.generation(), begin.syncSource(), begin.syncBytes(), shared));
          return training(a);
        })
        .onMessage(Reattach.class, reattach -> reattached(reattach, false, false))
        .onMessage(Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, signal -> stoppedWhileRunning(a))
        .build();
  }

  /** The ring of {@code a} trains: only the thread's end, or a Stop, ends it. */
  private Behavior<Command> training(Prepare a) {
    return running(a)
        .onMessage(Reattach.class, reattach -> reattached(reattach, reattach.generation() == a.generation(), false))
        .onMessage(Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, signal -> stoppedWhileRunning(a))
        .build();
  }

  /** Stopping {@code a} at a step boundary; the device stays with the worker if {@code keepDevice}. */
  private Behavior<Command> stopping(Prepare a, boolean keepDevice) {
    return active(a)
        .onMessage(DeviceAnswer.class, answer -> {
          // Stopped while the device was being granted: give it back at once, unless the job
          // re-forms and this rank may be in the next generation.
          if (answer.reply() instanceof NodeAgent.DeviceGranted granted && keepDevice) {
            device.granted(granted.slot());
          } else {
            releaseDevice();
          }
          return stopped(a);
        })
        .onMessage(FromRun.class, from -> ends(from, a), from -> runEnded(a, ended(from), true, keepDevice))
        .onMessage(Stop.class, stop -> stop.generation() >= a.generation(), stop -> stopping(a, stop.keepDevice()))
        .onMessage(Reattach.class, reattach -> reattached(reattach, false, false))
        .onMessage(Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, signal -> released())
        .build();
  }

  /** What every state does: report through the outbox. */
  private BehaviorBuilder<Command> common() {
    return Behaviors.receive(Command.class)
        .onMessage(FromRun.class, from -> !(from.event() instanceof RunEvent.ReplicaReady
            || from.event() instanceof RunEvent.RunEnded), from -> toOutbox(() -> outbox.fromRun(from.event())))
        .onMessage(ModelReport.class, model -> toOutbox(() -> outbox.modelReport(model.report())))
        .onMessage(CheckpointOutcome.class, outcome -> toOutbox(() -> outbox.checkpointOutcome(outcome.outcome())))
        .onMessage(Ack.class, ack -> toOutbox(() -> outbox.acknowledged(ack.generation(), ack.seq())))
        .onMessage(ResendOutbox.class, resend -> toOutbox(outbox::resend))
        .onMessage(EdgeNews.class, news -> peer.edgeChanged(news.changed(), outbox.generation()),
            news -> toOutbox(() -> outbox.tell(peer.placed(outbox.generation(), news.changed().rank(), device.id()))));
  }

  /** What every state with a generation does: a newer Prepare stops it first and waits. */
  private BehaviorBuilder<Command> active(Prepare a) {
    return common()
        .onMessage(Prepare.class, prepare -> prepare.generation() > a.generation(), prepare -> {
          stash.stash(prepare);
          return stop(a, "superseded by generation " + prepare.generation(), true);
        })
        .onMessage(AskState.class, ask -> {
          if (ask.generation() >= a.generation()) {
            stateAsks.add(ask.replyTo()); // answered once the run has stopped (a Stop came first)
          } else {
            ask.replyTo().tell(new HeldState(entityId, device.heldStep(), device.heldBytes()));
          }
          return Behaviors.same();
        });
  }

  /** Whether the thread says the run of {@code a} ended. */
  private static boolean ends(FromRun from, Prepare a) {
    return from.event() instanceof RunEvent.RunEnded ended && ended.generation() == a.generation();
  }

  private static RunEvent.RunEnded ended(FromRun from) {
    return (RunEvent.RunEnded) from.event();
  }

  /** What the states with a peer and a running thread share. */
  private BehaviorBuilder<Command> running(Prepare a) {
    return active(a)
        .onMessage(Stop.class, stop -> stop.generation() >= a.generation(), stop -> stop(a, stop.reason(), stop.keepDevice()))
        .onMessage(FromRun.class, from -> ends(from, a), from -> runEnded(a, ended(from), false, false));
  }

  private Behavior<Command> stop(Prepare a, String reason, boolean keep) {
    if (peer.running()) {
      context.getLog().info("{}: stopping generation {} ({})", entityId, a.generation(), reason);
      peer.abort("generation " + a.generation() + " stopped: " + reason);
      run.requestStop(a.generation());
    }
    return stopping(a, keep);
  }

  /** The thread ended its run of {@code a}: it keeps the state, with the device, unless told not to. */
  private Behavior<Command> runEnded(Prepare a, RunEvent.RunEnded ended, boolean wasStopping, boolean keepDevice) {
    finishedGeneration = Math.max(finishedGeneration, a.generation());
    if (ended.failure() != null && !wasStopping) {
      outbox.failed(new WorkerReport.Failed(a.generation(), a.rank(), ended.failure(), ended.retryable()));
    }
    peer.stop();
    device.runEnded(ended);
    run = null;
    if (wasStopping && !keepDevice || ended.failure() != null && !ended.retryable()) {
      releaseDevice();
    } else {
      // Kept with the state: a run that finished too, as the job may still re-form (a rank failed).
      timers.startSingleTimer(HoldExpired.INSTANCE, settings.holdDevice());
    }
    return wasStopping ? stopped(a) : idleAgain();
  }

  /** The run of {@code a} was stopped: a worker that gave its device back leaves memory. */
  private Behavior<Command> stopped(Prepare a) {
    finishedGeneration = Math.max(finishedGeneration, a.generation());
    if (stash.isEmpty() && !device.held()) {
      passivation.ask();
    }
    return idleAgain();
  }

  /** No generation any more: the state is final, and a newer generation waiting is prepared. */
  private Behavior<Command> idleAgain() {
    stateAsks.forEach(ask -> ask.tell(new HeldState(entityId, device.heldStep(), device.heldBytes())));
    stateAsks.clear();
    return stash.isEmpty() ? idle() : stash.unstashAll(idle());
  }

  /**
   * The coordinator recovered and asks whether this rank still trains. Only a rank whose ring has
   * begun does ({@code training}): one still getting ready waits for a Begin that the recovered
   * coordinator will never send. A run that is over still counts while its last reports are
   * unacknowledged, and a failure is said again so that the job re-forms for its reason. Whatever
   * the rank still has to say goes to where the job's entity is now (elsewhere, if its node died).
   */
  private Behavior<Command> reattached(Reattach reattach, boolean training, boolean idle) {
    int rank = outbox.rank();
    boolean ours = reattach.generation() == outbox.generation();
    if (ours) {
      outbox.redirect(reattach.coordinator());
    }
    if (training || ours && (outbox.pending() || outbox.failure() != null)) {
      reattach.coordinator().tell(new WorkerReport.Reattached(reattach.generation(), rank));
      if (training && peer.running()) {
        reattach.coordinator().tell(peer.placed(reattach.generation(), rank, device.id()));
      }
      outbox.resend();
      if (!training && outbox.failure() != null) {
        outbox.tell(outbox.failure());
      }
    } else {
      reattach.coordinator().tell(new WorkerReport.NotRunning(reattach.generation(), rank));
      if (idle && !device.held()) {
        passivation.ask();
      }
    }
    return Behaviors.same();
  }

  /** Does {@code what} to the outbox, then resends every few seconds while anything is unacknowledged. */
  private Behavior<Command> toOutbox(Runnable what) {
    what.run();
    if (!outbox.unacknowledged()) {
      timers.cancel(ResendOutbox.INSTANCE);
    } else if (!timers.isTimerActive(ResendOutbox.INSTANCE)) {
      timers.startTimerWithFixedDelay(ResendOutbox.INSTANCE, settings.reportResendInterval());
    }
    return Behaviors.same();
  }

  private void releaseDevice() {
    timers.cancel(HoldExpired.INSTANCE);
    device.release();
    run = null;
  }

  private void passivateUnlessPending() {
    if (!outbox.pending()) {
      passivation.ask(); // a worker with reports unacknowledged stays until they are
    }
  }

  private Behavior<Command> released() {
    peer.leaveShared();
    device.stopThread();
    return Behaviors.same();
  }

  /**
   * Stopped from outside while running {@code a} and the node stays up (a shard moved): the job
   * must not wait for a rank that is gone. On shutdown the job is meant to resume later, not fail.
   */
  private Behavior<Command> stoppedWhileRunning(Prepare a) {
    if (CoordinatedShutdown.get(context.getSystem()).getShutdownReason().isEmpty()) {
      outbox.tell(new WorkerReport.Failed(a.generation(), a.rank(), "worker " + entityId + " stopped while training", true));
    }
    return released();
  }
}
