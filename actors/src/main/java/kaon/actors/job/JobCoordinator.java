package kaon.actors.job;

import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import kaon.actors.checkpoint.CheckpointDamagedException;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.lease.CassandraLease;
import kaon.actors.worker.DeviceCensus;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.apache.pekko.serialization.SerializationExtension;

/**
 * The owner of one job: it forms the job's ranks into generations, starts their workers, sums
 * their per-epoch reports, records checkpoints and decides when the job has succeeded or failed.
 * One sharded, event-sourced entity per job, remembered by sharding while the job runs, so that a
 * restarted cluster restarts it without anyone asking.
 *
 * <p>A generation is the job's membership at one time. {@link GenerationStarted} is persisted
 * before any worker hears of it, so a generation number is never handed out twice; workers and
 * all-reduce peers fence every message by it. Workers have stable member ids; a generation lists
 * its members in rank order, so a worker that survives keeps its id, its device and its state
 * while its rank changes.
 *
 * <p>Forming a new generation (a rank failed, the job grows or shrinks): the members are stopped
 * at a step boundary, keeping their state in memory, and surveyed: which are still there and
 * which step's state each holds ({@link DeviceWorker.AskState}), while a device census says how
 * many devices the job can have. If any member holds state, the generation resumes from the
 * newest state held, with the survivors first and new members filling up to the devices there
 * are; members without that state receive it from one that has it ({@link DeviceWorker.Begin}
 * names the source) and nothing is read from Cassandra. Only when no member holds state does the
 * generation resume from a checkpoint. Every rank gets {@link DeviceWorker.Prepare}, takes a
 * device, gets its replica ready and answers {@link WorkerReport.Ready}; once all have, each gets the
 * ring in {@link DeviceWorker.Begin}.
 *
 * <p>Reports that change the journal ({@link WorkerReport.EpochReport}, {@link WorkerReport.CheckpointWritten}, {@link
 * WorkerReport.Finished}) are acknowledged only after the event they lead to is persisted; workers resend
 * them until then, so none is lost while this entity restarts (for example while Cassandra is
 * down, when persisting fails: its {@link JobHost} answers for the job meanwhile and starts it
 * again once the journal answers).
 *
 * <p>Fencing: under sharding, the job's {@link JobHost} holds the job's lease in Cassandra ({@code
 * kaon.job.fencing}) before it starts this coordinator; this coordinator confirms it before each
 * journal write (the write gate) and refuses owner commands while it is unconfirmed. One that
 * finds another owner stops writing and its host stops it; the other coordinator's generation
 * fences its workers out.
 *
 * <p>What survives a crash is the journal: spec, generations, epochs, committed checkpoints and
 * the outcome. After recovery a running job first asks its ranks to {@link DeviceWorker.Reattach}:
 * if every rank still trains the current generation, training simply goes on. Otherwise a new
 * generation forms as above: from the members' memory if they kept it, else from the newest
 * committed checkpoint that passes its checksum (older ones are tried in turn), or from step 0
 * if there is none.
 */
public final class JobCoordinator
    extends EventSourcedBehaviorWithEnforcedReplies<JobCoordinator.Command, JobCoordinator.Event, JobCoordinator.State> {

  /**
   * Completes once a trivial query went through the journal's session {@code journalSession}
   * (JobSettings#journalSession): what a node's readiness probe asks.
   */
  public static java.util.concurrent.CompletionStage<?> pingJournal(ActorSystem<?> system, String journalSession) {
    return JobHost.pingJournal(system, journalSession);
  }

  /** Nodes with this role host job coordinators. */
  public static final String ROLE = "coordinator";

  /** Sharding key of job entities; the entity id is the job id. */
  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "Job");

  /** Largest event this entity persists: above it Cassandra may refuse the write. */
  static final int MAX_EVENT_BYTES = 1 << 20;

  // ---------------------------------------------------------------- commands

  /** What the coordinator accepts. */
  public sealed interface Command
      permits Submit, GetStatus, Watch, Cancel, FromWorker, WatcherStopped,
          ReattachTimedOut, CheckpointChosen, Retry, JournalProbed, ProbeJournal, Scale, Surveyed, PrepareAgain,
          NodeJoined, LookForDevices, GrowCheck, JobHost.CoordinatorStatus, JobHost.JournalChecked, JobHost.CheckJournal,
          JobHost.StatusAnswered, JobHost.Stop, JobHost.TakeLease, JobHost.LeaseTaken, JobHost.LeaseLost {}

  /** Starts the job; answered with its status, or an error if this id already holds another job. */
  public record Submit(JobSpec spec, ActorRef<StatusReply<JobStatus>> replyTo) implements Command, KryoWireMessage {}

  /** Answered with the job's status ({@link JobStatus.Phase#UNKNOWN} if never submitted). */
  public record GetStatus(ActorRef<JobStatus> replyTo) implements Command, KryoWireMessage {}

  /** Subscribes {@code watcher} to {@link JobUpdate}s, starting with the current status. */
  public record Watch(ActorRef<JobUpdate> watcher) implements Command, KryoWireMessage {}

  /** Stops the job; an error if it already ended. */
  public record Cancel(ActorRef<StatusReply<JobStatus>> replyTo) implements Command, KryoWireMessage {}

  /**
   * Sets the bounds of the job's world size; a job outside them moves to the nearest bound in a
   * new generation (from its newest checkpoint). An error if the job ended or the bounds are wrong.
   */
  public record Scale(int minWorkers, int maxWorkers, ActorRef<StatusReply<JobStatus>> replyTo) implements Command, KryoWireMessage {}

  /** A report of one of the job's workers, adapted by the host (see {@link JobHost}). */
  record FromWorker(WorkerReport report) implements Command {}

  private record WatcherStopped(ActorRef<JobUpdate> watcher) implements Command {}

  private record ReattachTimedOut(long generation) implements Command {}

  /**
   * What forming a new generation found: the devices (a census; null if it failed) and, per
   * member of the current generation that answered in time, the state it holds.
   */
  private record Surveyed(long afterGeneration, String reason, List<DeviceCensus.NodeDevices> nodes,
      Map<Integer, DeviceWorker.HeldState> held) implements Command {}

  /** The checkpoint a new generation resumes from (empty: from step 0), and what was skipped. */
  private record CheckpointChosen(Surveyed survey, Optional<CheckpointInfo> checkpoint, String note, Throwable error)
      implements Command {}

  private record Retry(long afterGeneration, String reason) implements Command {}

  /** A node joined the cluster: it may bring devices this job can grow onto. */
  private record NodeJoined(String address) implements Command {}

  /** Time to look whether a node that joined brings devices. */
  private enum LookForDevices implements Command { INSTANCE }

  /** Devices available to this job, counted after a node joined. */
  private record GrowCheck(long generation, int available) implements Command {}

  /** Ranks of a forming generation that have not said they are ready are asked again. */
  private record PrepareAgain(long generation) implements Command {}

  /** How many devices a new generation can have, now that its state source is chosen. */

  private record JournalProbed(Throwable error) implements Command {}

  private enum ProbeJournal implements Command { INSTANCE }

  // ---------------------------------------------------------------- updates to watchers

  /** What watchers receive. */
  public sealed interface JobUpdate permits StatusChanged, Progress, EpochFinished {}

  /** The job's status after a change of phase, generation, checkpoint or health. */
  public record StatusChanged(JobStatus status) implements JobUpdate, KryoWireMessage {}

  /** Training progress inside an epoch (1-based epoch and step). */
  public record Progress(int epoch, int step, int stepsPerEpoch, double meanLoss) implements JobUpdate, KryoWireMessage {}

  /** An epoch finished. */
  public record EpochFinished(EpochMetrics metrics) implements JobUpdate, KryoWireMessage {}

  // ---------------------------------------------------------------- events

  /** What the journal holds (serialized as protobuf by {@link JobEventSerializer}). */
  public sealed interface Event
      permits JobSubmitted, GenerationStarted, EpochCompleted, CheckpointCommitted, JobSucceeded, JobFailed, JobCancelled,
          JobScaled {}

  /** The job was accepted. */
  public record JobSubmitted(JobSpec spec, long atMillis) implements Event {}

  /**
   * A new membership: the workers {@code members} (their member ids, in rank order) resume at
   * {@code resumeStep} from {@code stateSource} ({@code init}, {@code checkpoint:<id>} or {@code
   * memory:<worker>}), why, and when (epoch ms; 0 in events written before it was recorded).
   */
  public record GenerationStarted(long generation, int worldSize, long resumeStep, String reason, String stateSource,
      List<Integer> members, long atMillis) implements Event {

    public GenerationStarted {
      members = List.copyOf(members);
      if (members.size() != worldSize) {
        throw new IllegalArgumentException(members.size() + " members for world size " + worldSize);
      }
    }

    /** Members {@code 0..worldSize-1}: the first generation's, and every one before member ids. */
    public static List<Integer> ranks(int worldSize) {
      return java.util.stream.IntStream.range(0, worldSize).boxed().toList();
    }
  }

  /** An epoch's metrics over all ranks. */
  public record EpochCompleted(EpochMetrics metrics, long stepsDone) implements Event {}

  /** A checkpoint is durable in the store and may be resumed from. */
  public record CheckpointCommitted(CheckpointInfo checkpoint) implements Event {}

  /** Every rank finished with identical parameters. */
  public record JobSucceeded(double testAccuracy, String digest) implements Event {}

  /** The job stopped for {@code reason}. */
  public record JobFailed(String reason) implements Event {}

  /** The owner cancelled the job. */
  public record JobCancelled() implements Event {}

  /** The owner changed the bounds of the world size. */
  public record JobScaled(int minWorkers, int maxWorkers) implements Event {}

  // ---------------------------------------------------------------- state

  /** The job as the journal tells it. Immutable; each event makes a new one. */
  public record State(
      JobStatus.Phase phase,
      JobSpec spec,
      long generation,
      int worldSize,
      String stateSource,
      List<EpochMetrics> epochs,
      long stepsDone,
      List<CheckpointInfo> checkpoints,
      double testAccuracy,
      String digest,
      String message,
      int minWorkers,
      int maxWorkers,
      List<Integer> members,
      int nextMember,
      List<GenerationInfo> history) {

    /** Generations a job's history keeps: the newest ones, enough to see how it got here. */
    static final int HISTORY = 100;

    static State empty() {
      return new State(JobStatus.Phase.UNKNOWN, null, 0, 0, "", List.of(), 0, List.of(), Double.NaN, "", "", 0, 0, List.of(), 0,
          List.of());
    }

    State apply(Event event, int keepCheckpoints) {
      if (event instanceof JobSubmitted s) {
        return new State(JobStatus.Phase.STARTING, s.spec(), 0, 0, "", List.of(), 0, List.of(), Double.NaN, "", "",
            s.spec().minWorkers(), s.spec().maxWorkers(), List.of(), 0, List.of());
      } else if (event instanceof GenerationStarted g) {
        // Epochs finished after the resume point are trained again and reported again.
        List<EpochMetrics> kept = new ArrayList<>();
        for (EpochMetrics m : epochs) {
          if (m.stepsDone() <= g.resumeStep()) {
            kept.add(m);
          }
        }
        int next = Math.max(nextMember, g.members().stream().mapToInt(m -> m + 1).max().orElse(0));
        List<GenerationInfo> longer = new ArrayList<>(history);
        longer.add(new GenerationInfo(g.generation(), g.worldSize(), g.resumeStep(), g.reason(), g.stateSource(), g.members(),
            g.atMillis()));
        while (longer.size() > HISTORY) {
          longer.remove(0);
        }
        return new State(JobStatus.Phase.STARTING, spec, g.generation(), g.worldSize(), g.stateSource(), List.copyOf(kept),
            g.resumeStep(), checkpoints, testAccuracy, digest, message, minWorkers, maxWorkers, g.members(), next,
            List.copyOf(longer));
      } else if (event instanceof EpochCompleted e) {
        List<EpochMetrics> more = new ArrayList<>(epochs);
        more.add(e.metrics());
        return new State(JobStatus.Phase.RUNNING, spec, generation, worldSize, stateSource, List.copyOf(more),
            e.stepsDone(), checkpoints, testAccuracy, digest, message, minWorkers, maxWorkers, members, nextMember, history);
      } else if (event instanceof CheckpointCommitted c) {
        List<CheckpointInfo> more = new ArrayList<>(checkpoints);
        more.add(c.checkpoint());
        while (more.size() > keepCheckpoints) {
          more.remove(0);
        }
        return new State(phase == JobStatus.Phase.STARTING ? JobStatus.Phase.RUNNING : phase, spec, generation, worldSize,
            stateSource, epochs, stepsDone, List.copyOf(more), testAccuracy, digest, message, minWorkers, maxWorkers, members, nextMember, history);
      } else if (event instanceof JobSucceeded s) {
        return new State(JobStatus.Phase.SUCCEEDED, spec, generation, worldSize, stateSource, epochs, stepsDone,
            checkpoints, s.testAccuracy(), s.digest(), "", minWorkers, maxWorkers, members, nextMember, history);
      } else if (event instanceof JobFailed f) {
        return new State(JobStatus.Phase.FAILED, spec, generation, worldSize, stateSource, epochs, stepsDone,
            checkpoints, testAccuracy, digest, f.reason(), minWorkers, maxWorkers, members, nextMember, history);
      } else if (event instanceof JobCancelled) {
        return new State(JobStatus.Phase.CANCELLED, spec, generation, worldSize, stateSource, epochs, stepsDone,
            checkpoints, testAccuracy, digest, "cancelled by its owner", minWorkers, maxWorkers, members, nextMember, history);
      } else if (event instanceof JobScaled sc) {
        return new State(phase, spec, generation, worldSize, stateSource, epochs, stepsDone, checkpoints, testAccuracy,
            digest, message, sc.minWorkers(), sc.maxWorkers(), members, nextMember, history);
      }
      throw new IllegalArgumentException("unknown event " + event);
    }

    /** The newest committed checkpoint, or null. */
    CheckpointInfo latestCheckpoint() {
      return checkpoints.isEmpty() ? null : checkpoints.get(checkpoints.size() - 1);
    }

    JobStatus toStatus(String jobId, String health, String coordinatorNode) {
      return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, stateSource, latestCheckpoint(), health,
          testAccuracy, digest, message, worldSize, minWorkers, maxWorkers, history, coordinatorNode);
    }

    /** The world size the next generation gets: the current one, moved inside the bounds. */
    int targetWorldSize() {
      int current = worldSize == 0 ? spec.workers() : worldSize;
      return Math.max(minWorkers, Math.min(maxWorkers, current));
    }

    boolean isActive() {
      return phase == JobStatus.Phase.STARTING || phase == JobStatus.Phase.RUNNING;
    }
  }

  // ---------------------------------------------------------------- behavior

  private final ActorContext<Command> context;
  /**
   * Taken once: the context may be used on this actor's thread only, and callbacks of futures
   * (checkpoint reads, censuses) run elsewhere.
   */
  private final org.slf4j.Logger log;
  private final ActorSystem<?> system;
  /** The host's reference: the address workers and watchers use, stable across restarts. */
  private final ActorRef<Command> self;
  /** Where the job's workers send their reports: the host's adapter, stable across restarts too. */
  private final ActorRef<WorkerReport> reports;
  /** The job's lease, held by its host under sharding; journal writes wait while it is unconfirmed. */
  private final Optional<CassandraLease> lease;
  private final TimerScheduler<Command> timers;
  private final String jobId;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final CheckpointStore store;
  private final JobSettings settings;
  private final ClusterSharding sharding;
  private final Set<ActorRef<JobUpdate>> watchers = new HashSet<>();
  /** Peers of the generation being formed, by rank. */
  private final Map<Integer, ActorRef<RingMessage>> readyPeers = new TreeMap<>();
  /** Reports of unfinished epochs: epoch to rank to report. */
  private final Map<Integer, Map<Integer, WorkerReport.EpochReport>> epochReports = new TreeMap<>();
  /** Ranks that finished, by rank. */
  private final Map<Integer, WorkerReport.Finished> finished = new TreeMap<>();
  /** Ranks that answered a reattach, while one is pending. */
  private final Set<Integer> reattached = new HashSet<>();
  /** Problems by rank (checkpoint writes), or by the keys below, for the status. */
  private final Map<Integer, String> health = new TreeMap<>();
  private static final int JOURNAL = -2;
  private static final int WAITING = -3;
  /** A retryable failure that keeps coming back is not transient: the job fails after this many. */
  private static final int MAX_GENERATIONS_WITHOUT_PROGRESS = 5;
  /** How often ranks of a forming generation are asked again, and how many times. */
  private static final Duration PREPARE_AGAIN = Duration.ofSeconds(3);
  private static final int MAX_PREPARE_ATTEMPTS = 20;
  /**
   * A node joined while the job was below its maximum: censuses left to find its devices. Its
   * node agent is listed by the receptionist only some time after the node is up.
   */
  private int growLooks;
  /** How often the job looks for devices now; null when it does not. */
  private Duration lookingEvery;
  /** Every rank of the current generation has been told to begin. */
  private boolean training;
  private static final int GROW_LOOKS = 10;
  private static final Duration GROW_LOOK_INTERVAL = Duration.ofSeconds(1);
  /** The checkpoint the forming generation resumes from ("" for none). */
  private String preparing = "";
  /** The forming generation resumes from its members' memory; the rank that sends it, and its size. */
  private boolean preparingFromMembers;
  private int syncSource = -1;
  private int syncBytes;
  /** Ranks of the forming generation that have said they need the state. */
  private final Set<Integer> needState = new HashSet<>();
  private int prepareAttempts;
  private int generationsWithoutProgress;
  private static final int CHECKPOINT_READS = -1;
  /** Delay before reading checkpoints again after the store failed; null after a success. */
  private Duration readRetry;
  private static final Duration MAX_READ_RETRY = Duration.ofSeconds(30);
  /** A new generation is being chosen (checkpoint verification in flight). */
  private boolean choosing;
  /** This entity of a job that does not exist is leaving (see {@link #unloadIfUnknown}). */
  private boolean unloading;
  /**
   * Events waiting for the journal to answer, and what to do once they are persisted. Results of
   * training, and new generations, are held here rather than persisted blindly: they are written
   * only after a probe confirmed the job's lease and reached the journal. A write to an unreachable
   * Cassandra would stop this coordinator until Cassandra is back.
   */
  private final List<Event> deferred = new ArrayList<>();
  private final List<Consumer<State>> afterDeferred = new ArrayList<>();
  private boolean probing;
  /** Why this coordinator no longer writes (another one holds the job's lease), or null. */
  private String lostLease;
  private Duration probeDelay;
  private long journalDownSince;

  /** Registers job entities with sharding on this node. */
  public static void init(ActorSystem<?> system, CheckpointStore store, JobSettings settings) {
    ClusterShardingSettings sharded = ClusterShardingSettings.create(system)
        // Running jobs are remembered: after a crash of the whole cluster, their shards and the
        // entities themselves start again without being asked. A job leaves the set when it
        // ends (it passivates).
        .withRememberEntities(true)
        // A job can be quiet for longer than the idle timeout (a slow epoch); passivating it
        // would drop its forming state and its watchers.
        .withNoPassivationStrategy();
    // The lease is the job's, taken by its host (JobHost) while the job's entity lives, not the
    // shard's (sharding's use-lease): a shard outlives its jobs, and would renew the leases of
    // every job that ever ran, once a second each, for as long as the cluster runs.
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId(), entity.getShard(), store, settings))
        .withSettings(sharded)
        .withStopMessage(JobHost.Stop.INSTANCE)
        .withRole(ROLE));
  }

  /**
   * The coordinator of job {@code jobId}; {@code shard} is null when not run under sharding. It
   * runs inside a {@link JobHost}, which answers for it and starts it again while its journal is
   * out of reach.
   */
  public static Behavior<Command> create(
      String jobId, ActorRef<ClusterSharding.ShardCommand> shard, CheckpointStore store, JobSettings settings) {
    return Behaviors.setup(context -> {
      Optional<CassandraLease> lease = shard == null || settings.leaseConfigPath().isEmpty()
          ? Optional.empty()
          : CassandraLease.forJob(context.getSystem(), settings.leaseConfigPath(), jobId);
      return JobHost.create(jobId, settings, lease,
          (host, reports) -> journaled(jobId, host, reports, lease, shard, store, settings));
    });
  }

  /** The event-sourced coordinator itself, whose messages for others name {@code host} as the sender. */
  private static Behavior<Command> journaled(String jobId, ActorRef<Command> host, ActorRef<WorkerReport> reports,
      Optional<CassandraLease> lease, ActorRef<ClusterSharding.ShardCommand> shard, CheckpointStore store,
      JobSettings settings) {
    return Behaviors.setup(context -> Behaviors.withTimers(
        timers -> new JobCoordinator(context, timers, jobId, host, reports, lease, shard, store, settings)));
  }

  private JobCoordinator(
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      String jobId,
      ActorRef<Command> host,
      ActorRef<WorkerReport> reports,
      Optional<CassandraLease> lease,
      ActorRef<ClusterSharding.ShardCommand> shard,
      CheckpointStore store,
      JobSettings settings) {
    // A failed write (Cassandra down) stops this behavior; its host answers for the job meanwhile
    // and starts it again once the journal answers. It then recovers from the journal and
    // reattaches to its ranks, which have kept training and resend their reports.
    super(PersistenceId.of(ENTITY_KEY.name(), jobId));
    this.context = context;
    this.log = context.getLog();
    this.self = host;
    this.reports = reports;
    this.system = context.getSystem();
    this.timers = timers;
    this.jobId = jobId;
    this.shard = shard;
    this.store = store;
    this.settings = settings;
    this.sharding = ClusterSharding.get(system);
    this.lease = lease;
    org.apache.pekko.cluster.typed.Cluster.get(system).subscriptions().tell(
        org.apache.pekko.cluster.typed.Subscribe.create(
            context.messageAdapter(org.apache.pekko.cluster.ClusterEvent.MemberUp.class,
                up -> new NodeJoined(up.member().address().toString())),
            org.apache.pekko.cluster.ClusterEvent.MemberUp.class));
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(RecoveryCompleted.instance(), this::onRecovered)
        .build();
  }

  private void onRecovered(State state) {
    self.tell(new JobHost.CoordinatorStatus(status(state)));
    if (state.isActive()) {
      log.info("job {} recovered in generation {}; asking its ranks whether they still train", jobId, state.generation());
      reattached.clear();
      for (int rank = 0; rank < state.worldSize(); rank++) {
        workerAt(state, rank).tell(new DeviceWorker.Reattach(state.generation(), reports));
      }
      timers.startSingleTimer(ReattachTimedOut.class, new ReattachTimedOut(state.generation()), settings.reattachTimeout());
    } else if (state.phase().isTerminal()) {
      passivate();
    }
  }

  @Override
  public CommandHandlerWithReply<Command, Event, State> commandHandler() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(Submit.class, this::onSubmit)
        .onCommand(GetStatus.class, (state, get) ->
            Effect().none().thenRun(this::unloadIfUnknown).thenReply(get.replyTo(), this::status))
        .onCommand(Watch.class, this::onWatch)
        .onCommand(WatcherStopped.class, this::onWatcherStopped)
        .onCommand(Cancel.class, this::onCancel)
        .onCommand(Scale.class, this::onScale)
        .onCommand(FromWorker.class, (state, from) -> onWorkerReport(state, from.report()))
        .onCommand(ReattachTimedOut.class, this::onReattachTimedOut)
        .onCommand(CheckpointChosen.class, this::onCheckpointChosen)
        .onCommand(Retry.class, (state, retry) -> {
          choosing = false;
          return newGeneration(state, retry.afterGeneration(), retry.reason());
        })
        .onCommand(Surveyed.class, this::onSurveyed)
        .onCommand(PrepareAgain.class, this::onPrepareAgain)
        .onCommand(NodeJoined.class, this::onNodeJoined)
        .onCommand(LookForDevices.class, (state, look) -> {
          growIfDevices(state);
          return Effect().noReply();
        })
        .onCommand(GrowCheck.class, this::onGrowCheck)
        .onCommand(JournalProbed.class, this::onJournalProbed)
        .onCommand(ProbeJournal.class, (state, probe) -> probe())
        .build();
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent((state, event) -> state.apply(event, store.settings().keepLast()));
  }

  private ReplyEffect<Event, State> onWorkerReport(State state, WorkerReport report) {
    if (report instanceof WorkerReport.Ready ready) {
      return onWorkerReady(state, ready);
    } else if (report instanceof WorkerReport.Failed failed) {
      return onWorkerFailed(state, failed);
    } else if (report instanceof WorkerReport.StepProgress progress) {
      return onStepProgress(state, progress);
    } else if (report instanceof WorkerReport.EpochReport epoch) {
      return onEpochReport(state, epoch);
    } else if (report instanceof WorkerReport.CheckpointWritten written) {
      return onCheckpointWritten(state, written);
    } else if (report instanceof WorkerReport.CheckpointHealth health) {
      return onCheckpointHealth(state, health);
    } else if (report instanceof WorkerReport.Finished finished) {
      return onWorkerFinished(state, finished);
    } else if (report instanceof WorkerReport.Reattached reattached) {
      return onReattached(state, reattached);
    } else {
      return onNotRunning(state, (WorkerReport.NotRunning) report);
    }
  }

  // ---------------------------------------------------------------- owner commands

  private ReplyEffect<Event, State> onSubmit(State state, Submit submit) {
    if (unloading) {
      return Effect().reply(submit.replyTo(), StatusReply.error("job " + jobId + " is being unloaded; retry"));
    }
    if (state.phase() != JobStatus.Phase.UNKNOWN) {
      if (sameSubmission(submit.spec(), state.spec())) {
        // The same submission again (a retry, or a client re-attaching): answer as the first time.
        return Effect().reply(submit.replyTo(), StatusReply.success(status(state)));
      }
      return Effect().reply(submit.replyTo(), StatusReply.error("job " + jobId + " already exists with another spec"));
    }
    String fenced = writeProblem();
    if (fenced != null) {
      return Effect().reply(submit.replyTo(), StatusReply.error(fenced));
    }
    JobSubmitted submitted = new JobSubmitted(submit.spec(), System.currentTimeMillis());
    String tooLarge = sizeProblem(submitted);
    if (tooLarge != null) {
      return Effect().reply(submit.replyTo(), StatusReply.error(tooLarge));
    }
    return Effect()
        .persist(List.of(submitted, new GenerationStarted(1, submit.spec().workers(), 0, "job submitted", "init",
            GenerationStarted.ranks(submit.spec().workers()), submitted.atMillis())))
        .thenRun(s -> prepareWorkers(s, "", false, -1, 0))
        .thenRun(this::publishStatus)
        .thenReply(submit.replyTo(), s -> StatusReply.success(status(s)));
  }

  private ReplyEffect<Event, State> onWatch(State state, Watch watch) {
    watchers.add(watch.watcher());
    context.watchWith(watch.watcher(), new WatcherStopped(watch.watcher()));
    watch.watcher().tell(new StatusChanged(status(state)));
    unloadIfUnknown(state);
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onWatcherStopped(State state, WatcherStopped stopped) {
    watchers.remove(stopped.watcher());
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onCancel(State state, Cancel cancel) {
    if (state.phase() == JobStatus.Phase.UNKNOWN) {
      unloadIfUnknown(state);
      return Effect().reply(cancel.replyTo(), StatusReply.error("job " + jobId + " does not exist"));
    }
    if (state.phase().isTerminal()) {
      return Effect().reply(cancel.replyTo(), StatusReply.error("job " + jobId + " already ended: " + state.phase()));
    }
    String fenced = writeProblem();
    if (fenced != null) {
      return Effect().reply(cancel.replyTo(), StatusReply.error(fenced));
    }
    return Effect()
        .persist(new JobCancelled())
        .thenRun(s -> end(s, "job cancelled"))
        .thenReply(cancel.replyTo(), s -> StatusReply.success(status(s)));
  }

  private ReplyEffect<Event, State> onScale(State state, Scale scale) {
    if (state.phase() == JobStatus.Phase.UNKNOWN) {
      unloadIfUnknown(state);
      return Effect().reply(scale.replyTo(), StatusReply.error("job " + jobId + " does not exist"));
    }
    if (state.phase().isTerminal()) {
      return Effect().reply(scale.replyTo(), StatusReply.error("job " + jobId + " already ended: " + state.phase()));
    }
    if (scale.minWorkers() < 1 || scale.maxWorkers() < scale.minWorkers()) {
      return Effect().reply(scale.replyTo(), StatusReply.error(
          "min_workers: need 1 <= min_workers <= max_workers, got " + scale.minWorkers() + ".." + scale.maxWorkers()));
    }
    if (scale.maxWorkers() > state.spec().globalBatch()) {
      return Effect().reply(scale.replyTo(), StatusReply.error("max_workers: the global batch of "
          + state.spec().globalBatch() + " cannot be split over " + scale.maxWorkers() + " workers"));
    }
    String fenced = writeProblem();
    if (fenced != null) {
      return Effect().reply(scale.replyTo(), StatusReply.error(fenced));
    }
    return Effect()
        .persist(new JobScaled(scale.minWorkers(), scale.maxWorkers()))
        .thenRun(s -> {
          if (s.targetWorldSize() != s.worldSize()) {
            newGeneration(s, s.generation(), "scaled to " + s.minWorkers() + ".." + s.maxWorkers() + " workers");
          } else {
            scheduleLooks(s); // a higher maximum: devices may be free for it
          }
        })
        .thenRun(this::publishStatus)
        .thenReply(scale.replyTo(), s -> StatusReply.success(status(s)));
  }

  // ---------------------------------------------------------------- forming generations

  private ReplyEffect<Event, State> onWorkerReady(State state, WorkerReport.Ready ready) {
    // While a new generation is being chosen, the current one's ranks have been stopped: a late
    // ready (sent before the rank's Stop came, to a coordinator that recovered) must not begin it.
    if (!isCurrent(state, ready.generation()) || choosing) {
      return Effect().noReply();
    }
    readyPeers.put(ready.rank(), ready.peer());
    if (ready.needsState()) {
      needState.add(ready.rank());
    } else {
      needState.remove(ready.rank());
    }
    log.info("job {} generation {}: rank {} ready on {}{}", jobId, ready.generation(), ready.rank(), ready.device(),
        ready.needsState() ? " (its state comes from rank " + syncSource + ")" : "");
    if (readyPeers.size() == state.worldSize()) {
      timers.cancel(PrepareAgain.class);
      List<ActorRef<RingMessage>> ring = new ArrayList<>(readyPeers.values());
      // Every rank takes part in the state transfer (it is an all-reduce), or none does.
      int source = needState.isEmpty() ? -1 : syncSource;
      for (int rank = 0; rank < state.worldSize(); rank++) {
        workerAt(state, rank).tell(new DeviceWorker.Begin(state.generation(), ring, source, syncBytes));
      }
      readyPeers.clear();
      needState.clear();
      training = true;
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onWorkerFailed(State state, WorkerReport.Failed failed) {
    if (!isCurrent(state, failed.generation()) || endPending()) {
      return Effect().noReply();
    }
    String reason = truncate("rank " + failed.rank() + " failed: " + failed.reason());
    if (failed.retryable() && choosing) {
      // Another rank of this generation already led to a new one; the ring broke once.
      return Effect().noReply();
    }
    if (failed.noDevice()) {
      // Devices went away between the census and the placement (a node being removed): this is
      // not the rank's failure, and the job waits for devices rather than failing after a few.
      health.put(WAITING, "waiting for devices: " + failed.reason());
      generationsWithoutProgress = Math.min(generationsWithoutProgress, MAX_GENERATIONS_WITHOUT_PROGRESS - 1);
    }
    if (failed.retryable() && ++generationsWithoutProgress <= MAX_GENERATIONS_WITHOUT_PROGRESS) {
      // The job goes on with whoever is left: a new generation, sized to the devices there are.
      // The first one at once (a lost node); repeated failures back off, giving the cluster time
      // to settle (a node being downed, devices changing hands between the ranks of a generation).
      if (generationsWithoutProgress == 1) {
        log.warn("job {} generation {}: {}; forming a new generation", jobId, failed.generation(), reason);
        return newGeneration(state, state.generation(), reason);
      }
      Duration backoff = Duration.ofSeconds(1L << Math.min(4, generationsWithoutProgress - 1));
      log.warn("job {} generation {}: {}; forming a new generation in {} s", jobId, failed.generation(),
          reason, backoff.toSeconds());
      stopWorkersOf(state, reason, true);
      timers.startSingleTimer(Retry.class, new Retry(state.generation(), reason), backoff);
      choosing = true;
      return Effect().noReply();
    }
    log.error("job {} generation {}: {}", jobId, failed.generation(), reason);
    String why = failed.retryable()
        ? reason + " (" + MAX_GENERATIONS_WITHOUT_PROGRESS + " generations in a row made no progress)"
        : reason;
    // Ended once recorded (see onJournalProbed).
    return persistWhenReachable(new JobFailed(why), s -> {});
  }

  private ReplyEffect<Event, State> onReattached(State state, WorkerReport.Reattached answer) {
    if (!isCurrent(state, answer.generation()) || !timers.isTimerActive(ReattachTimedOut.class)) {
      return Effect().noReply();
    }
    reattached.add(answer.rank());
    if (reattached.size() == state.worldSize()) {
      timers.cancel(ReattachTimedOut.class);
      log.info("job {}: all {} ranks of generation {} still train; carrying on", jobId, state.worldSize(), state.generation());
      training = true;
      scheduleLooks(state);
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onNotRunning(State state, WorkerReport.NotRunning answer) {
    if (!isCurrent(state, answer.generation()) || !timers.isTimerActive(ReattachTimedOut.class)) {
      return Effect().noReply();
    }
    timers.cancel(ReattachTimedOut.class);
    return newGeneration(state, state.generation(), "rank " + answer.rank() + " no longer trains generation " + state.generation());
  }

  private ReplyEffect<Event, State> onReattachTimedOut(State state, ReattachTimedOut timeout) {
    if (!isCurrent(state, timeout.generation())) {
      return Effect().noReply();
    }
    return newGeneration(state, state.generation(),
        "ranks of generation " + state.generation() + " did not answer after the coordinator recovered");
  }

  /**
   * Starts forming the next generation: its members stop at a step boundary, keeping their state,
   * and are surveyed with a device census ({@link #onSurveyed}). The generation itself is
   * persisted once its members and its state are chosen ({@link #form}).
   */
  private ReplyEffect<Event, State> newGeneration(State state, long afterGeneration, String reason) {
    if (choosing || state.generation() != afterGeneration || !state.isActive()) {
      return Effect().noReply();
    }
    choosing = true;
    stopWorkersOf(state, "new generation: " + reason, true);
    context.pipeToSelf(survey(state, reason), (survey, error) -> error == null
        ? survey
        : new Surveyed(afterGeneration, reason, null, Map.of()));
    return Effect().noReply();
  }

  /**
   * How long a member may take to say which state it holds. The Stop sent just before aborts its
   * all-reduce, so a live member answers within a step; one that stays silent is on a node that
   * is gone or going (and the census, which waits as long for each node, does not count it).
   */
  private static final Duration STATE_ANSWER = Duration.ofSeconds(1);

  /** A device census and, from every member of the current generation that answers, its state. */
  private CompletionStage<Surveyed> survey(State state, String reason) {
    CompletableFuture<List<DeviceCensus.NodeDevices>> census = DeviceCensus.take(system, settings.reattachTimeout())
        .toCompletableFuture()
        .exceptionally(error -> {
          // The job waits for devices and takes another census shortly (see form).
          log.warn("job {}: device census failed: {}", jobId, error.getMessage());
          return null;
        });
    Map<Integer, CompletableFuture<DeviceWorker.HeldState>> asks = new TreeMap<>();
    for (int id : state.members()) {
      asks.put(id, member(id)
          .<DeviceWorker.HeldState>ask(replyTo -> new DeviceWorker.AskState(state.generation(), replyTo), STATE_ANSWER)
          .toCompletableFuture()
          .exceptionally(error -> null));
    }
    List<CompletableFuture<?>> all = new ArrayList<>(asks.values());
    all.add(census);
    return CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).thenApply(done -> {
      Map<Integer, DeviceWorker.HeldState> held = new TreeMap<>();
      asks.forEach((id, answer) -> {
        DeviceWorker.HeldState h = answer.join();
        if (h != null) {
          held.put(id, h);
        }
      });
      return new Surveyed(state.generation(), reason, census.join(), held);
    });
  }

  private ReplyEffect<Event, State> onSurveyed(State state, Surveyed survey) {
    if (state.generation() != survey.afterGeneration() || !state.isActive()) {
      choosing = false;
      return Effect().noReply();
    }
    if (survey.nodes() != null) {
      // One line a person can read at INFO; the whole census (every node's devices and owners)
      // at DEBUG.
      List<String> held = new ArrayList<>();
      survey.held().forEach((id, h) -> held.add("worker-" + id + (h.step() < 0 ? " none" : " step " + h.step())));
      log.info("job {}: {} devices available to it on {} nodes; states held: {}", jobId,
          availableToThisJob(survey.nodes()), survey.nodes().size(), held.isEmpty() ? "none" : String.join(", ", held));
      log.debug("job {}: device census: {}", jobId, survey.nodes());
    }
    if (newestHeldStep(survey) > 0) {
      // Survivors hold the state: nothing to read from Cassandra.
      return form(state, survey, Optional.empty(), "");
    }
    List<CheckpointInfo> newestFirst = new ArrayList<>(state.checkpoints());
    java.util.Collections.reverse(newestFirst);
    context.pipeToSelf(choose(newestFirst, 0, ""), (chosen, error) -> error == null
        ? new CheckpointChosen(survey, chosen.checkpoint(), chosen.note(), null)
        : new CheckpointChosen(survey, Optional.empty(), "", error));
    return Effect().noReply();
  }

  private static long newestHeldStep(Surveyed survey) {
    return survey.held().values().stream().mapToLong(DeviceWorker.HeldState::step).max().orElse(-1);
  }

  private record Choice(Optional<CheckpointInfo> checkpoint, String note) {}

  private CompletionStage<Choice> choose(List<CheckpointInfo> candidates, int index, String note) {
    if (index >= candidates.size()) {
      return CompletableFuture.completedFuture(new Choice(Optional.empty(), note));
    }
    CheckpointInfo candidate = candidates.get(index);
    return store.load(jobId, candidate.id())
        .thenApply(data -> new Choice(Optional.of(candidate), note))
        .exceptionallyCompose(error -> {
          Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error;
          if (cause instanceof CheckpointDamagedException) {
            log.warn("job {}: {}; falling back to the previous checkpoint", jobId, cause.getMessage());
            return choose(candidates, index + 1, note + cause.getMessage() + "; ");
          }
          return CompletableFuture.failedFuture(cause);
        });
  }

  private ReplyEffect<Event, State> onCheckpointChosen(State state, CheckpointChosen chosen) {
    Surveyed survey = chosen.survey();
    if (state.generation() != survey.afterGeneration() || !state.isActive()) {
      choosing = false;
      return Effect().noReply();
    }
    if (chosen.error() != null) {
      // The store is unreachable, which says nothing about the checkpoints: try again, less
      // often the longer it lasts.
      choosing = false;
      readRetry = readRetry == null ? settings.persistRetryMin() : min(readRetry.multipliedBy(2), MAX_READ_RETRY);
      log.warn("job {}: cannot read checkpoints ({}); retrying in {} ms", jobId, chosen.error().getMessage(), readRetry.toMillis());
      health.put(CHECKPOINT_READS, "cannot read checkpoints (" + chosen.error().getMessage() + "); retrying every "
          + readRetry.toMillis() + " ms");
      publishStatus(state);
      timers.startSingleTimer(Retry.class, new Retry(survey.afterGeneration(), survey.reason()), readRetry);
      return Effect().noReply();
    }
    readRetry = null;
    health.remove(CHECKPOINT_READS);
    return form(state, survey, chosen.checkpoint(), chosen.note());
  }

  /**
   * Persists the next generation: as many ranks as the job may have devices for, within its
   * bounds. Its members are the current ones that are still there (those holding the newest
   * state first), then new ones. The state is the newest any member holds, else {@code
   * checkpoint}, else the initial parameters.
   */
  private ReplyEffect<Event, State> form(State state, Surveyed survey, Optional<CheckpointInfo> checkpoint, String note) {
    choosing = false;
    int available = availableToThisJob(survey.nodes());
    int size = Math.min(state.maxWorkers(), available);
    if (survey.nodes() == null || size < state.minWorkers()) {
      // Below its minimum the job waits for devices; it says so, and looks again shortly. The
      // members keep their state meanwhile (for as long as they hold their devices).
      String waiting = "waiting for devices: " + available + " available, needs at least " + state.minWorkers();
      if (!waiting.equals(health.put(WAITING, waiting))) {
        publishStatus(state);
      }
      choosing = true;
      timers.startSingleTimer(Retry.class, new Retry(survey.afterGeneration(), survey.reason()), settings.reattachTimeout());
      return Effect().noReply();
    }
    health.remove(WAITING);
    long newest = newestHeldStep(survey);
    boolean fromMembers = newest > 0;
    List<Integer> members = chooseMembers(state, survey, newest, size);
    long resumeStep = fromMembers ? newest : checkpoint.map(CheckpointInfo::step).orElse(0L);
    String source;
    int sourceRank = -1;
    int sourceBytes = 0;
    if (fromMembers) {
      for (int rank = 0; rank < members.size() && sourceRank < 0; rank++) {
        DeviceWorker.HeldState h = survey.held().get(members.get(rank));
        if (h != null && h.step() == newest) {
          sourceRank = rank;
          sourceBytes = h.bytes();
        }
      }
      source = "memory:" + DeviceWorker.entityId(jobId, members.get(sourceRank));
    } else {
      source = checkpoint.map(c -> "checkpoint:" + c.id()).orElse("init");
    }
    String reason = truncate(survey.reason() + (note.isEmpty() ? "" : "; skipped damaged checkpoints: " + note));
    log.info("job {}: generation {} of {} ranks resumes at step {} from {} (workers {}; {})",
        jobId, state.generation() + 1, size, resumeStep, source, members, reason);
    List<Integer> before = state.members();
    String checkpointId = fromMembers ? "" : checkpoint.map(CheckpointInfo::id).orElse("");
    int transferFrom = sourceRank;
    int transferBytes = sourceBytes;
    // Still choosing until the generation is recorded: nothing else may start one meanwhile.
    choosing = true;
    return persistWhenReachable(new GenerationStarted(state.generation() + 1, size, resumeStep, reason, source, members,
        System.currentTimeMillis()), s -> {
          choosing = false;
          // Workers the job no longer has give their devices (and their state) back.
          for (int id : before) {
            if (!members.contains(id)) {
              member(id).tell(new DeviceWorker.Stop(s.generation(), "not in generation " + s.generation(), false));
            }
          }
          prepareWorkers(s, checkpointId, fromMembers, transferFrom, transferBytes);
          publishStatus(s);
        });
  }

  /**
   * The members of the next generation, in rank order: the current members that still own a
   * device (those holding the state of {@code newestStep} first, so that a smaller generation
   * keeps them), then new member ids up to {@code size}.
   */
  private List<Integer> chooseMembers(State state, Surveyed survey, long newestStep, int size) {
    Set<String> owners = new HashSet<>();
    for (DeviceCensus.NodeDevices node : survey.nodes()) {
      owners.addAll(node.owners());
    }
    List<Integer> holding = new ArrayList<>();
    List<Integer> others = new ArrayList<>();
    for (int id : state.members()) {
      if (!owners.contains(DeviceWorker.entityId(jobId, id))) {
        continue; // gone with its node, or it gave its device back
      }
      // A member that owns a device but did not answer in time is slow, not gone: it stays, and
      // receives the state like a new one.
      DeviceWorker.HeldState h = survey.held().get(id);
      (h != null && h.step() == newestStep && newestStep > 0 ? holding : others).add(id);
    }
    List<Integer> members = new ArrayList<>(holding);
    members.addAll(others);
    while (members.size() > size) {
      members.remove(members.size() - 1);
    }
    for (int next = state.nextMember(); members.size() < size; next++) {
      members.add(next);
    }
    return List.copyOf(members);
  }

  // ---------------------------------------------------------------- training reports

  private ReplyEffect<Event, State> onStepProgress(State state, WorkerReport.StepProgress progress) {
    if (isCurrent(state, progress.generation())) {
      publish(new Progress(progress.epoch() + 1, progress.step(), progress.stepsPerEpoch(), progress.meanLoss()));
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onEpochReport(State state, WorkerReport.EpochReport report) {
    if (!isCurrent(state, report.generation())) {
      return Effect().noReply();
    }
    if (state.epochs().stream().anyMatch(m -> m.epoch() == report.epoch() + 1)) {
      // Already persisted (a resend after our restart): only the ack was missing.
      ack(state, report.generation(), report.rank(), report.seq());
      return Effect().noReply();
    }
    if (deferred.stream().anyMatch(e -> e instanceof EpochCompleted c && c.metrics().epoch() == report.epoch() + 1)) {
      // A resend while the epoch waits for the journal; it is acknowledged once persisted.
      return Effect().noReply();
    }
    Map<Integer, WorkerReport.EpochReport> reports = epochReports.computeIfAbsent(report.epoch(), e -> new TreeMap<>());
    reports.put(report.rank(), report);
    if (reports.size() < state.worldSize()) {
      return Effect().noReply();
    }
    epochReports.remove(report.epoch());
    EpochMetrics metrics = sum(report.epoch(), reports.values(), state.worldSize(), report.stepsDone());
    generationsWithoutProgress = 0;
    return persistWhenReachable(new EpochCompleted(metrics, report.stepsDone()), s -> {
      reports.values().forEach(r -> ack(s, r.generation(), r.rank(), r.seq()));
      publish(new EpochFinished(metrics));
    });
  }

  private ReplyEffect<Event, State> onCheckpointWritten(State state, WorkerReport.CheckpointWritten written) {
    if (!isCurrent(state, written.generation())) {
      return Effect().noReply();
    }
    CheckpointInfo info = written.checkpoint();
    if (state.checkpoints().stream().anyMatch(c -> c.id().equals(info.id()))) {
      ack(state, written.generation(), written.rank(), written.seq());
      return Effect().noReply();
    }
    if (deferred.stream().anyMatch(e -> e instanceof CheckpointCommitted c && c.checkpoint().id().equals(info.id()))) {
      return Effect().noReply();
    }
    generationsWithoutProgress = 0;
    return persistWhenReachable(new CheckpointCommitted(info), s -> {
      log.info("job {}: checkpoint at step {} committed ({} bytes)", jobId, info.step(), info.bytes());
      ack(s, written.generation(), written.rank(), written.seq());
      pruneCheckpoints(s);
    });
  }

  private ReplyEffect<Event, State> onCheckpointHealth(State state, WorkerReport.CheckpointHealth report) {
    if (isCurrent(state, report.generation())) {
      String before = healthLine();
      if (report.problem().isEmpty()) {
        health.remove(report.rank());
      } else {
        health.put(report.rank(), report.problem());
      }
      if (!before.equals(healthLine())) {
        publishStatus(state);
      }
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onWorkerFinished(State state, WorkerReport.Finished done) {
    if (!isCurrent(state, done.generation()) || endPending()) {
      return Effect().noReply();
    }
    finished.put(done.rank(), done);
    if (finished.size() < state.worldSize()) {
      return Effect().noReply();
    }
    List<WorkerReport.Finished> all = new ArrayList<>(finished.values());
    finished.clear();
    Set<String> digests = new HashSet<>();
    all.forEach(f -> digests.add(f.digest()));
    Event outcome;
    if (digests.size() != 1) {
      outcome = new JobFailed("replicas diverged: ranks ended with different parameters " + digests);
    } else {
      outcome = new JobSucceeded(lastTestAccuracy(state), digests.iterator().next());
    }
    return persistWhenReachable(outcome, s -> all.forEach(f -> ack(s, f.generation(), f.rank(), f.seq())));
  }

  // ---------------------------------------------------------------- journal gate

  /**
   * Persists {@code event} once Cassandra answers a probe, then runs {@code after}. Until then
   * the event waits here and the status says why; the reports it came from stay unacknowledged,
   * so their senders keep them.
   */
  private ReplyEffect<Event, State> persistWhenReachable(Event event, Consumer<State> after) {
    deferred.add(event);
    afterDeferred.add(after);
    return probing ? Effect().noReply() : probe();
  }

  private ReplyEffect<Event, State> probe() {
    if (!probing && !deferred.isEmpty() && lostLease == null) {
      probing = true;
      context.pipeToSelf(confirmLease().thenCompose(x -> JobHost.pingJournal(system, settings.journalSession())),
          (ok, error) -> new JournalProbed(error));
    }
    return Effect().noReply();
  }

  /**
   * Renews the job's lease, so that the write that follows happens while nobody else can hold
   * it. Fails with {@link LeaseLostException} if another coordinator has it; the host then stops
   * this one (the lease's callback), and nothing more is written here.
   */
  private CompletionStage<?> confirmLease() {
    if (lease.isEmpty()) {
      return CompletableFuture.completedFuture(null);
    }
    return lease.get().confirm().thenApply(ours -> {
      if (!ours) {
        throw new LeaseLostException(lease.get() + " is held by another coordinator");
      }
      return ours;
    });
  }

  /** Another coordinator holds this job's lease. */
  private static final class LeaseLostException extends RuntimeException {
    LeaseLostException(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Why this coordinator may not write now, or null. Owner commands that would write are refused
   * with it (the client retries); results of training wait in the gate instead.
   */
  private String writeProblem() {
    if (lostLease != null) {
      return "job " + jobId + ": " + lostLease;
    }
    if (health.containsKey(JOURNAL)) {
      return "job " + jobId + ": " + health.get(JOURNAL) + "; retry";
    }
    if (lease.isPresent() && !lease.get().checkLease()) {
      return "job " + jobId + ": its lease is not confirmed (Cassandra unreachable); retry";
    }
    return null;
  }

  /** The job's end (success or failure) waits in the gate. */
  private boolean endPending() {
    return deferred.stream().anyMatch(e -> e instanceof JobSucceeded || e instanceof JobFailed);
  }

  /**
   * Whether {@code again} is the submission that made {@code recorded}. The start size is left
   * out: it is resolved from the devices free at each attempt, and a retry after the job took
   * devices (or grew) must find the same job.
   */
  static boolean sameSubmission(JobSpec again, JobSpec recorded) {
    return startedAs(again, recorded.workers()).equals(recorded);
  }

  /** {@code spec} with {@code start} ranks at first (inside its bounds). */
  private static JobSpec startedAs(JobSpec spec, int start) {
    int inside = Math.max(spec.minWorkers(), Math.min(spec.maxWorkers(), start));
    return new JobSpec(spec.task(), inside, spec.minWorkers(), spec.maxWorkers(), spec.epochs(), spec.globalBatch(),
        spec.optimizer(), spec.seed(), spec.maxSteps(), spec.modelOutput(), spec.checkpointEverySteps());
  }

  private ReplyEffect<Event, State> onJournalProbed(State state, JournalProbed probed) {
    probing = false;
    Throwable error = probed.error() instanceof java.util.concurrent.CompletionException c && c.getCause() != null
        ? c.getCause() : probed.error();
    if (error instanceof LeaseLostException) {
      // Fenced: another coordinator runs this job. What waited here is dropped; its reports are
      // the other coordinator's to record (its workers' generation fences ours out).
      lostLease = error.getMessage();
      log.warn("job {}: {}; this coordinator stops acting", jobId, lostLease);
      deferred.clear();
      afterDeferred.clear();
      timers.cancelAll();
      health.put(JOURNAL, lostLease);
      publishStatus(state);
      return Effect().noReply();
    }
    if (error != null) {
      if (journalDownSince == 0) {
        journalDownSince = System.currentTimeMillis();
      }
      probeDelay = probeDelay == null ? settings.persistRetryMin() : min(probeDelay.multipliedBy(2), settings.persistRetryMax());
      health.put(JOURNAL, "journal unavailable since " + java.time.Instant.ofEpochMilli(journalDownSince) + " ("
          + error.getMessage() + "); training goes on and its results wait to be recorded");
      publishStatus(state);
      timers.startSingleTimer(ProbeJournal.INSTANCE, probeDelay);
      return Effect().noReply();
    }
    boolean wasDown = health.remove(JOURNAL) != null;
    journalDownSince = 0;
    probeDelay = null;
    List<Event> events = new ArrayList<>(deferred);
    List<Consumer<State>> afters = new ArrayList<>(afterDeferred);
    deferred.clear();
    afterDeferred.clear();
    if (events.isEmpty()) {
      return Effect().noReply();
    }
    return Effect()
        .persist(events)
        .thenRun(s -> afters.forEach(after -> after.accept(s)))
        .thenRun(s -> {
          if (s.phase().isTerminal()) {
            end(s, "job ended");
          } else if (wasDown || events.stream().anyMatch(e -> e instanceof CheckpointCommitted)) {
            publishStatus(s);
          }
        })
        .thenNoReply();
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  // ---------------------------------------------------------------- helpers

  /** Test accuracy of the last epoch, counting epochs still waiting for the journal. */
  private double lastTestAccuracy(State state) {
    // The highest epoch, not the last recorded: an epoch's result may reach the journal after a
    // later one's when it waited through a restart of this entity.
    EpochMetrics last = null;
    for (EpochMetrics m : state.epochs()) {
      if (last == null || m.epoch() > last.epoch()) {
        last = m;
      }
    }
    for (Event e : deferred) {
      if (e instanceof EpochCompleted c && (last == null || c.metrics().epoch() > last.epoch())) {
        last = c.metrics();
      }
    }
    return last == null ? Double.NaN : last.testAccuracy();
  }

  private boolean isCurrent(State state, long generation) {
    return state.isActive() && generation == state.generation();
  }

  private JobStatus status(State state) {
    return state.toStatus(jobId, healthLine(), system.address().toString());
  }

  private String healthLine() {
    return String.join("; ", health.values());
  }

  /** Why {@code event} may not be persisted, or null. */
  private String sizeProblem(Event event) {
    int bytes = SerializationExtension.get(system).serialize(event).get().length;
    return bytes > MAX_EVENT_BYTES
        ? "the job spec is too large: its event would be " + bytes + " bytes, the limit is " + MAX_EVENT_BYTES
        : null;
  }

  private static String truncate(String reason) {
    // Reasons go into events; a pathological one must not push an event over the size limit.
    return reason.length() <= 4096 ? reason : reason.substring(0, 4093) + "...";
  }

  private static EpochMetrics sum(int epoch, java.util.Collection<WorkerReport.EpochReport> reports, int worldSize, long stepsDone) {
    // Training sums are global on every rank: rank 0's stand for all. Every rank checked the
    // epoch's ledger; all must have found each sample once.
    WorkerReport.EpochReport first = reports.iterator().next();
    double loss = first.lossSum();
    long correct = first.correct();
    long examples = first.examples();
    boolean eachOnce = true;
    long testCorrect = 0;
    long testExamples = 0;
    long slowest = 1;
    for (WorkerReport.EpochReport r : reports) {
      eachOnce &= r.eachSampleOnce() && r.examples() == examples;
      testCorrect += r.testCorrect();
      testExamples += r.testExamples();
      slowest = Math.max(slowest, r.trainNanos());
    }
    double seconds = slowest / 1e9;
    return new EpochMetrics(
        epoch + 1,
        loss / Math.max(1, examples),
        (double) correct / Math.max(1, examples),
        testExamples == 0 ? Double.NaN : (double) testCorrect / testExamples,
        examples / seconds,
        seconds,
        worldSize,
        stepsDone,
        examples,
        eachOnce);
  }

  private void prepareWorkers(State state, String checkpointId, boolean fromMembers, int sourceRank, int sourceBytes) {
    training = false;
    scheduleLooks(state);
    preparing = checkpointId;
    preparingFromMembers = fromMembers;
    syncSource = sourceRank;
    syncBytes = sourceBytes;
    needState.clear();
    prepareAttempts = 0;
    timers.startTimerWithFixedDelay(PrepareAgain.class, new PrepareAgain(state.generation()), PREPARE_AGAIN);
    readyPeers.clear();
    epochReports.clear();
    finished.clear();
    // Results of the previous generation that never reached the journal are redone by this one.
    deferred.clear();
    afterDeferred.clear();
    health.keySet().removeIf(rank -> rank >= 0);
    for (int rank = 0; rank < state.worldSize(); rank++) {
      workerAt(state, rank).tell(prepare(state, rank));
    }
  }

  private DeviceWorker.Prepare prepare(State state, int rank) {
    return new DeviceWorker.Prepare(jobId, state.spec(), state.generation(), rank, state.worldSize(), reports,
        preparing, state.stepsDone(), preparingFromMembers);
  }

  /**
   * A Prepare sent to a rank whose shard sat on a node that has just died is lost; once that node
   * is downed, the same message reaches a new home for the shard. A rank that stays silent for
   * long is given up on, and the job forms a generation without it.
   */
  private ReplyEffect<Event, State> onPrepareAgain(State state, PrepareAgain again) {
    if (!isCurrent(state, again.generation()) || readyPeers.size() == state.worldSize()) {
      timers.cancel(PrepareAgain.class);
      return Effect().noReply();
    }
    if (++prepareAttempts > MAX_PREPARE_ATTEMPTS) {
      timers.cancel(PrepareAgain.class);
      return newGeneration(state, state.generation(), "ranks " + missingRanks(state) + " did not get ready in time");
    }
    for (int rank : missingRanks(state)) {
      workerAt(state, rank).tell(prepare(state, rank));
    }
    return Effect().noReply();
  }

  /**
   * A job below its maximum grows onto devices as soon as a census shows them: the ranks stop at
   * a step boundary and the new ones receive their state, so growing costs a pause, not steps.
   * It looks every {@link JobSettings#growLookInterval} (devices another job gave back, a worker
   * dropped for being slow), and every second for a while after a node joins (its agent is listed
   * by the receptionist only some time after the node is up).
   */
  private ReplyEffect<Event, State> onNodeJoined(State state, NodeJoined joined) {
    if (state.isActive() && state.worldSize() < state.maxWorkers()) {
      log.info("job {}: node {} joined; growing if it brings devices", jobId, joined.address());
      growLooks = GROW_LOOKS;
      scheduleLooks(state);
    }
    return Effect().noReply();
  }

  /** Looks for devices at the pace the job needs now: fast after a join, slow below the maximum, else not. */
  private void scheduleLooks(State state) {
    Duration every = !state.isActive() || state.worldSize() >= state.maxWorkers() ? null
        : growLooks > 0 ? GROW_LOOK_INTERVAL : settings.growLookInterval();
    if (every == null) {
      growLooks = 0;
      timers.cancel(LookForDevices.INSTANCE);
    } else if (!every.equals(lookingEvery)) {
      timers.startTimerWithFixedDelay(LookForDevices.INSTANCE, every);
    }
    lookingEvery = every;
  }

  private void growIfDevices(State state) {
    if (!state.isActive() || state.worldSize() >= state.maxWorkers()) {
      scheduleLooks(state);
      return;
    }
    if (choosing || !training) {
      return; // a generation is forming; it counts the devices itself, and the next look comes later
    }
    if (growLooks > 0 && --growLooks == 0) {
      scheduleLooks(state);
    }
    long generation = state.generation();
    context.pipeToSelf(DeviceCensus.take(system, settings.reattachTimeout()),
        (nodes, error) -> new GrowCheck(generation, availableToThisJob(nodes)));
  }

  /**
   * Devices a generation of this job can have, from a census (none when it failed): the free ones
   * and those its own ranks hold, which they keep between generations and give back when dropped.
   */
  private int availableToThisJob(List<DeviceCensus.NodeDevices> nodes) {
    String ownPrefix = DeviceWorker.entityIdPrefix(jobId);
    return nodes == null ? 0 : nodes.stream().mapToInt(n -> n.available(owner -> owner.startsWith(ownPrefix))).sum();
  }

  private ReplyEffect<Event, State> onGrowCheck(State state, GrowCheck check) {
    if (!isCurrent(state, check.generation()) || Math.min(check.available(), state.maxWorkers()) <= state.worldSize()) {
      return Effect().noReply();
    }
    growLooks = 0;
    return newGeneration(state, state.generation(),
        "growing from " + state.worldSize() + " to " + Math.min(check.available(), state.maxWorkers()) + " ranks: devices free");
  }

  private List<Integer> missingRanks(State state) {
    List<Integer> missing = new ArrayList<>();
    for (int rank = 0; rank < state.worldSize(); rank++) {
      if (!readyPeers.containsKey(rank)) {
        missing.add(rank);
      }
    }
    return missing;
  }

  /**
   * Deletes checkpoints older than the ones the journal keeps (see {@link State#apply}). Never one
   * the journal keeps: after a generation resumed from an earlier step, the kept ones are not in
   * step order, and the oldest kept is not the lowest step.
   */
  private void pruneCheckpoints(State state) {
    if (state.checkpoints().size() < store.settings().keepLast()) {
      return;
    }
    long lowestKept = state.checkpoints().stream().mapToLong(CheckpointInfo::step).min().orElse(0);
    Set<String> kept = new HashSet<>();
    state.checkpoints().forEach(c -> kept.add(c.id()));
    store.deleteOlderThan(jobId, lowestKept, kept).whenComplete((n, error) -> {
      if (error != null) {
        // Old checkpoints are deleted again after the next commit; nothing depends on it now.
        log.warn("job {}: deleting old checkpoints failed: {}", jobId, error.getMessage());
      }
    });
  }

  /** The job ended: stop its workers, tell watchers, and leave memory (and sharding's set). */
  private void end(State state, String reason) {
    log.info("job {} ended: {} {}", jobId, state.phase(), state.message());
    stopWorkersOf(state, reason, false);
    publishStatus(state);
    passivate();
  }

  /**
   * Stops the ranks of {@code generation}. {@code keepDevices} while the job re-forms: its ranks
   * hold their devices so that the next generation finds them where they were.
   */
  private void stopWorkersOf(State state, String reason, boolean keepDevices) {
    for (int id : state.members()) {
      member(id).tell(new DeviceWorker.Stop(state.generation(), reason, keepDevices));
    }
  }

  /** Acknowledges report {@code seq} of rank {@code rank}, if it is a rank of the current generation. */
  private void ack(State state, long generation, int rank, long seq) {
    if (generation == state.generation() && rank >= 0 && rank < state.members().size()) {
      workerAt(state, rank).tell(new DeviceWorker.Ack(generation, seq));
    }
  }

  /**
   * Asking about a job that does not exist starts its entity, which sharding would then remember
   * forever: such an entity leaves again at once. A Submit that races with that gets "retry".
   */
  private void unloadIfUnknown(State state) {
    if (state.phase() == JobStatus.Phase.UNKNOWN && shard != null) {
      unloading = true;
      passivate();
    }
  }

  private void passivate() {
    // Not while the node shuts down: the job must be remembered and resume when it comes back.
    if (shard != null && CoordinatedShutdown.get(system).getShutdownReason().isEmpty()) {
      shard.tell(new ClusterSharding.Passivate<>(self));
    }
  }

  /** The worker with member id {@code id}. */
  private EntityRef<DeviceWorker.Command> member(int id) {
    return sharding.entityRefFor(DeviceWorker.ENTITY_KEY, DeviceWorker.entityId(jobId, id));
  }

  /** The worker that has rank {@code rank} in the current generation. */
  private EntityRef<DeviceWorker.Command> workerAt(State state, int rank) {
    return member(state.members().get(rank));
  }

  private void publishStatus(State state) {
    JobStatus status = status(state);
    self.tell(new JobHost.CoordinatorStatus(status));
    publish(new StatusChanged(status));
  }

  private void publish(JobUpdate update) {
    watchers.forEach(w -> w.tell(update));
  }
}
