package kaon.actors.worker;

import java.time.Duration;
import java.util.List;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobSpec;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * One rank of one job: owns a device of its node for as long as it trains, and runs the rank's
 * {@link TrainingRun} on a thread of its own, never on an actor thread. A sharded entity, one per
 * (job, rank).
 *
 * <p>Protocol with the {@link JobCoordinator}: {@link Prepare} (take a device, build the replica,
 * start an {@link AllReducePeer} for the generation) is answered with {@link
 * JobCoordinator.WorkerReady}; {@link Begin} brings the ring and starts the steps; {@link Stop}
 * ends the run at the next step boundary. A Prepare of a newer generation stops the current run
 * first. Messages of an older generation are ignored.
 *
 * <p>Nothing survives a crash: the device is released (the {@link NodeAgent} watches its owners),
 * the peer dies with its parent, and the coordinator forms a new generation.
 */
public final class DeviceWorker extends AbstractBehavior<DeviceWorker.Command> {

  /** Sharding key of worker entities; ids come from {@link #entityId}. */
  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "Worker");

  /** What a worker accepts. */
  public sealed interface Command permits Prepare, Begin, Stop, DeviceAnswer, ReplicaReady, RunEnded {}

  /** Get ready to train rank {@code rank} of {@code worldSize} in {@code generation}. */
  public record Prepare(
      String jobId,
      JobSpec spec,
      long generation,
      int rank,
      int worldSize,
      ActorRef<JobCoordinator.Command> coordinator)
      implements Command, KryoWireMessage {}

  /** Every rank of {@code generation} is ready; {@code ring} holds their peers in rank order. */
  public record Begin(long generation, List<ActorRef<RingMessage>> ring) implements Command, KryoWireMessage {}

  /** Stop training {@code generation} (and any older one). */
  public record Stop(long generation, String reason) implements Command, KryoWireMessage {}

  private record DeviceAnswer(NodeAgent.DeviceReply reply, String error) implements Command {}

  /** From the training thread: the replica is built. */
  record ReplicaReady(long generation) implements Command {}

  /** From the training thread: the run is over, with a failure message or null. */
  record RunEnded(long generation, String failure) implements Command {}

  /** The entity id of rank {@code rank} of job {@code jobId}. */
  public static String entityId(String jobId, int rank) {
    return jobId + "-rank-" + rank;
  }

  /** Registers worker entities with sharding on this node. */
  public static void init(
      ActorSystem<?> system, ActorRef<NodeAgent.Command> nodeAgent, TaskCatalog catalog, WorkerSettings settings) {
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY,
            entity -> create(entity.getEntityId(), entity.getShard(), nodeAgent, catalog, settings))
        // A training worker gets no message for as long as its thread trains (the thread talks to
        // its peer and coordinator directly); idle-time passivation would stop it mid-job. It
        // passivates itself once its run has ended.
        .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy()));
  }

  /** The worker entity {@code entityId}. */
  public static Behavior<Command> create(
      String entityId,
      ActorRef<ClusterSharding.ShardCommand> shard,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      WorkerSettings settings) {
    return Behaviors.withStash(16, stash -> Behaviors.setup(
        context -> new DeviceWorker(context, stash, entityId, shard, nodeAgent, catalog, settings)));
  }

  private static final Duration DEVICE_ASK_TIMEOUT = Duration.ofSeconds(10);

  private final StashBuffer<Command> stash;
  private final String entityId;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final ActorRef<NodeAgent.Command> nodeAgent;
  private final TaskCatalog catalog;
  private final WorkerSettings settings;

  /** The generation being prepared or trained, or null when idle. */
  private Prepare assignment;
  private DeviceSlot device;
  private ActorRef<RingMessage> peer;
  private TrainingRun run;
  private boolean stopping;
  /** Newest generation whose run ended here; its messages are late and ignored. */
  private long finishedGeneration;

  private DeviceWorker(
      ActorContext<Command> context,
      StashBuffer<Command> stash,
      String entityId,
      ActorRef<ClusterSharding.ShardCommand> shard,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      WorkerSettings settings) {
    super(context);
    this.stash = stash;
    this.entityId = entityId;
    this.shard = shard;
    this.nodeAgent = nodeAgent;
    this.catalog = catalog;
    this.settings = settings;
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Prepare.class, this::onPrepare)
        .onMessage(DeviceAnswer.class, this::onDeviceAnswer)
        .onMessage(ReplicaReady.class, this::onReplicaReady)
        .onMessage(Begin.class, this::onBegin)
        .onMessage(Stop.class, this::onStop)
        .onMessage(RunEnded.class, this::onRunEnded)
        .onSignal(PostStop.class, signal -> onPostStop())
        .build();
  }

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
      stopCurrent("superseded by generation " + prepare.generation());
      return this;
    }
    assignment = prepare;
    stopping = false;
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
      // Stopped while the device was being granted: give it back at once.
      nodeAgent.tell(new NodeAgent.ReleaseDevice(entityId));
      return finishStopping();
    }
    if (answer.reply() instanceof NodeAgent.DeviceGranted granted) {
      device = granted.slot();
      Prepare a = assignment;
      peer = getContext().spawn(
          AllReducePeer.create(a.jobId(), a.generation(), a.rank(), a.worldSize(), settings.allReduce()),
          "allreduce-" + a.generation());
      run = new TrainingRun(
          new TrainingRun.Assignment(a.jobId(), a.spec(), a.generation(), a.rank(), a.worldSize(),
              device, a.coordinator(), peer),
          catalog, settings, getContext().getSystem().scheduler(), getContext().getSelf());
      Thread thread = new Thread(run, "kaon-" + entityId + "-g" + a.generation());
      thread.setDaemon(true);
      thread.start();
      return this;
    }
    String reason = answer.reply() instanceof NodeAgent.NoFreeDevice none
        ? none.reason()
        : "no answer from the node agent: " + answer.error();
    assignment.coordinator().tell(new JobCoordinator.WorkerFailed(
        assignment.generation(), assignment.rank(), "no device for rank " + assignment.rank() + ": " + reason));
    assignment = null;
    return this;
  }

  private Behavior<Command> onReplicaReady(ReplicaReady ready) {
    if (assignment != null && ready.generation() == assignment.generation() && !stopping) {
      assignment.coordinator().tell(new JobCoordinator.WorkerReady(
          assignment.generation(), assignment.rank(), peer, device.id()));
    }
    return this;
  }

  private Behavior<Command> onBegin(Begin begin) {
    if (assignment != null && run != null && begin.generation() == assignment.generation() && !stopping) {
      peer.tell(new AllReducePeer.Connect(begin.ring()));
      run.begin();
    }
    return this;
  }

  private Behavior<Command> onStop(Stop stop) {
    if (assignment == null) {
      passivate();
    } else if (stop.generation() >= assignment.generation()) {
      stopCurrent(stop.reason());
    }
    return this;
  }

  private void stopCurrent(String reason) {
    stopping = true;
    if (run != null) {
      getContext().getLog().info("{}: stopping generation {} ({})", entityId, assignment.generation(), reason);
      run.requestStop();
    }
  }

  private Behavior<Command> onRunEnded(RunEnded ended) {
    if (assignment == null || ended.generation() != assignment.generation()) {
      return this;
    }
    if (ended.failure() != null && !stopping) {
      assignment.coordinator().tell(new JobCoordinator.WorkerFailed(
          assignment.generation(), assignment.rank(), ended.failure()));
    }
    getContext().stop(peer);
    nodeAgent.tell(new NodeAgent.ReleaseDevice(entityId));
    run = null;
    peer = null;
    device = null;
    finishedGeneration = Math.max(finishedGeneration, assignment.generation());
    return finishStopping();
  }

  /**
   * Idle again: prepare a newer generation if one is waiting. A stopped worker leaves memory; one
   * that finished its run waits for the coordinator's {@link Stop} to do so.
   */
  private Behavior<Command> finishStopping() {
    boolean stopped = stopping;
    assignment = null;
    stopping = false;
    if (!stash.isEmpty()) {
      return stash.unstashAll(this);
    }
    if (stopped) {
      passivate();
    }
    return this;
  }

  private void passivate() {
    shard.tell(new ClusterSharding.Passivate<>(getContext().getSelf()));
  }

  private Behavior<Command> onPostStop() {
    if (run != null) {
      run.requestStop();
      if (!stopping) {
        // Stopped from outside (node shutting down, shard moved): the job must not wait for a
        // rank that is gone.
        assignment.coordinator().tell(new JobCoordinator.WorkerFailed(
            assignment.generation(), assignment.rank(), "worker " + entityId + " stopped while training"));
      }
    }
    return this;
  }
}
