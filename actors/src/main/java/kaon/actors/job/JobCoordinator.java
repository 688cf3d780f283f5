package kaon.actors.job;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import kaon.actors.worker.DeviceWorker;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
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

/**
 * The owner of one job: it forms the job's ranks into a generation, starts their workers, sums
 * their per-epoch reports and decides when the job has succeeded or failed. One sharded,
 * event-sourced entity per job.
 *
 * <p>A generation is the job's membership at one time. {@link GenerationStarted} is persisted
 * before any worker is told about it, so a generation number is never handed out twice, even if
 * this entity crashes while forming one; workers and all-reduce peers fence every message by it.
 * Forming: every rank gets {@link DeviceWorker.Prepare}, takes a device, builds its replica and
 * answers {@link WorkerReady} with its all-reduce peer; once all have, each gets the ring in
 * {@link DeviceWorker.Begin} and training starts.
 *
 * <p>What survives a crash or a rebalance is the journal: the spec, generations, finished epochs
 * and the outcome. Forming progress, partial epoch reports and watchers are transient. A job that
 * was running when its coordinator stopped starts a new generation when it recovers; until
 * checkpoints exist (the durability work) that generation trains from step 0.
 */
public final class JobCoordinator
    extends EventSourcedBehaviorWithEnforcedReplies<JobCoordinator.Command, JobCoordinator.Event, JobCoordinator.State> {

  /** Sharding key of job entities; the entity id is the job id. */
  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "Job");

  // ---------------------------------------------------------------- commands

  /** What the coordinator accepts. */
  public sealed interface Command
      permits Submit, GetStatus, Watch, Cancel, WorkerReady, WorkerFailed, StepProgress,
          EpochReport, WorkerFinished, WatcherStopped {}

  /** Starts the job; answered with its status, or an error if this id already holds another job. */
  public record Submit(JobSpec spec, ActorRef<StatusReply<JobStatus>> replyTo) implements Command {}

  /** Answered with the job's status ({@link JobStatus.Phase#UNKNOWN} if never submitted). */
  public record GetStatus(ActorRef<JobStatus> replyTo) implements Command {}

  /** Subscribes {@code watcher} to {@link JobUpdate}s, starting with the current status. */
  public record Watch(ActorRef<JobUpdate> watcher) implements Command {}

  /** Stops the job; an error if it already ended. */
  public record Cancel(ActorRef<StatusReply<JobStatus>> replyTo) implements Command {}

  /** A rank has its device and replica; {@code peer} is its end of the ring. */
  public record WorkerReady(long generation, int rank, ActorRef<RingMessage> peer, String device)
      implements Command, KryoWireMessage {}

  /** A rank cannot go on. */
  public record WorkerFailed(long generation, int rank, String reason)
      implements Command, KryoWireMessage {}

  /** Where rank 0 is inside an epoch; forwarded to watchers, never persisted. */
  public record StepProgress(long generation, int epoch, int step, int stepsPerEpoch, double meanLoss)
      implements Command, KryoWireMessage {}

  /** One rank's share of a finished epoch (sums, not means, so they add up over ranks). */
  public record EpochReport(
      long generation,
      int rank,
      int epoch,
      double lossSum,
      long correct,
      long examples,
      long testCorrect,
      long testExamples,
      long trainNanos,
      long stepsDone)
      implements Command, KryoWireMessage {}

  /** A rank finished its last step; {@code digest} is the SHA-256 of its parameters. */
  public record WorkerFinished(long generation, int rank, String digest)
      implements Command, KryoWireMessage {}

  private record WatcherStopped(ActorRef<JobUpdate> watcher) implements Command {}

  // ---------------------------------------------------------------- updates to watchers

  /** What watchers receive. */
  public sealed interface JobUpdate permits StatusChanged, Progress, EpochFinished {}

  /** The job's status after a change of phase or generation. */
  public record StatusChanged(JobStatus status) implements JobUpdate {}

  /** Training progress inside an epoch (1-based epoch and step). */
  public record Progress(int epoch, int step, int stepsPerEpoch, double meanLoss) implements JobUpdate {}

  /** An epoch finished. */
  public record EpochFinished(EpochMetrics metrics) implements JobUpdate {}

  // ---------------------------------------------------------------- events

  /** What the journal holds. */
  public sealed interface Event
      permits JobSubmitted, GenerationStarted, EpochCompleted, JobSucceeded, JobFailed, JobCancelled {}

  /** The job was accepted. */
  public record JobSubmitted(JobSpec spec, long atMillis) implements Event {}

  /** A new membership: ranks {@code 0..worldSize-1}, resuming at {@code resumeStep}, and why. */
  public record GenerationStarted(long generation, int worldSize, long resumeStep, String reason)
      implements Event {}

  /** An epoch's metrics over all ranks. */
  public record EpochCompleted(EpochMetrics metrics, long stepsDone) implements Event {}

  /** Every rank finished with identical parameters. */
  public record JobSucceeded(double testAccuracy, String digest) implements Event {}

  /** The job stopped for {@code reason}. */
  public record JobFailed(String reason) implements Event {}

  /** The owner cancelled the job. */
  public record JobCancelled() implements Event {}

  // ---------------------------------------------------------------- state

  /** The job as the journal tells it. Immutable; each event makes a new one. */
  public record State(
      JobStatus.Phase phase,
      JobSpec spec,
      long generation,
      int worldSize,
      List<EpochMetrics> epochs,
      long stepsDone,
      double testAccuracy,
      String digest,
      String message) {

    static State empty() {
      return new State(JobStatus.Phase.UNKNOWN, null, 0, 0, List.of(), 0, Double.NaN, "", "");
    }

    State apply(Event event) {
      if (event instanceof JobSubmitted s) {
        return new State(JobStatus.Phase.STARTING, s.spec(), 0, 0, List.of(), 0, Double.NaN, "", "");
      } else if (event instanceof GenerationStarted g) {
        // A generation retrains from its resume step: epochs after it are redone.
        List<EpochMetrics> kept = new ArrayList<>();
        long steps = 0;
        if (g.resumeStep() > 0) {
          kept.addAll(epochs);
          steps = stepsDone;
        }
        return new State(JobStatus.Phase.STARTING, spec, g.generation(), g.worldSize(), List.copyOf(kept),
            steps, testAccuracy, digest, message);
      } else if (event instanceof EpochCompleted e) {
        List<EpochMetrics> more = new ArrayList<>(epochs);
        more.add(e.metrics());
        return new State(JobStatus.Phase.RUNNING, spec, generation, worldSize, List.copyOf(more),
            e.stepsDone(), testAccuracy, digest, message);
      } else if (event instanceof JobSucceeded s) {
        return new State(JobStatus.Phase.SUCCEEDED, spec, generation, worldSize, epochs, stepsDone,
            s.testAccuracy(), s.digest(), "");
      } else if (event instanceof JobFailed f) {
        return new State(JobStatus.Phase.FAILED, spec, generation, worldSize, epochs, stepsDone,
            testAccuracy, digest, f.reason());
      } else if (event instanceof JobCancelled) {
        return new State(JobStatus.Phase.CANCELLED, spec, generation, worldSize, epochs, stepsDone,
            testAccuracy, digest, "cancelled by its owner");
      }
      throw new IllegalArgumentException("unknown event " + event);
    }

    JobStatus toStatus(String jobId) {
      return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, testAccuracy, digest, message);
    }
  }

  // ---------------------------------------------------------------- behavior

  private final ActorContext<Command> context;
  private final String jobId;
  private final ClusterSharding sharding;
  private final Set<ActorRef<JobUpdate>> watchers = new HashSet<>();
  /** Peers of the generation being formed, by rank. */
  private final Map<Integer, ActorRef<RingMessage>> readyPeers = new TreeMap<>();
  /** Reports of unfinished epochs: epoch to rank to report. */
  private final Map<Integer, Map<Integer, EpochReport>> epochReports = new TreeMap<>();
  /** Digests of ranks that finished, by rank. */
  private final Map<Integer, String> finished = new TreeMap<>();

  /** Registers job entities with sharding on this node. */
  public static void init(ActorSystem<?> system) {
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId()))
        // A job can go quiet for longer than the idle timeout (a slow epoch, a job waiting for
        // devices); passivating it would drop its forming state and its watchers.
        .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy()));
  }

  /** The coordinator of job {@code jobId}. */
  public static Behavior<Command> create(String jobId) {
    return Behaviors.setup(context -> new JobCoordinator(context, jobId));
  }

  private JobCoordinator(ActorContext<Command> context, String jobId) {
    super(PersistenceId.of(ENTITY_KEY.name(), jobId));
    this.context = context;
    this.jobId = jobId;
    this.sharding = ClusterSharding.get(context.getSystem());
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
    if (state.phase() == JobStatus.Phase.STARTING || state.phase() == JobStatus.Phase.RUNNING) {
      context.getLog().info("job {} recovered while {}; starting a new generation", jobId, state.phase());
      context.getSelf().tell(new WorkerFailed(state.generation(), -1, "coordinator restarted"));
    }
  }

  @Override
  public CommandHandlerWithReply<Command, Event, State> commandHandler() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(Submit.class, this::onSubmit)
        .onCommand(GetStatus.class, (state, get) -> Effect().reply(get.replyTo(), state.toStatus(jobId)))
        .onCommand(Watch.class, this::onWatch)
        .onCommand(WatcherStopped.class, this::onWatcherStopped)
        .onCommand(Cancel.class, this::onCancel)
        .onCommand(WorkerReady.class, this::onWorkerReady)
        .onCommand(WorkerFailed.class, this::onWorkerFailed)
        .onCommand(StepProgress.class, this::onStepProgress)
        .onCommand(EpochReport.class, this::onEpochReport)
        .onCommand(WorkerFinished.class, this::onWorkerFinished)
        .build();
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent(State::apply);
  }

  private ReplyEffect<Event, State> onSubmit(State state, Submit submit) {
    if (state.phase() != JobStatus.Phase.UNKNOWN) {
      if (submit.spec().equals(state.spec())) {
        // The same submission again (a retry): answer as the first time.
        return Effect().reply(submit.replyTo(), StatusReply.success(state.toStatus(jobId)));
      }
      return Effect().reply(submit.replyTo(),
          StatusReply.error("job " + jobId + " already exists with another spec"));
    }
    return Effect()
        .persist(List.of(
            new JobSubmitted(submit.spec(), System.currentTimeMillis()),
            new GenerationStarted(1, submit.spec().workers(), 0, "job submitted")))
        .thenRun(this::prepareWorkers)
        .thenRun(this::publishStatus)
        .thenReply(submit.replyTo(), s -> StatusReply.success(s.toStatus(jobId)));
  }

  private ReplyEffect<Event, State> onWatch(State state, Watch watch) {
    watchers.add(watch.watcher());
    context.watchWith(watch.watcher(), new WatcherStopped(watch.watcher()));
    watch.watcher().tell(new StatusChanged(state.toStatus(jobId)));
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onWatcherStopped(State state, WatcherStopped stopped) {
    watchers.remove(stopped.watcher());
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onCancel(State state, Cancel cancel) {
    if (state.phase() == JobStatus.Phase.UNKNOWN) {
      return Effect().reply(cancel.replyTo(), StatusReply.error("job " + jobId + " does not exist"));
    }
    if (state.phase().isTerminal()) {
      return Effect().reply(cancel.replyTo(),
          StatusReply.error("job " + jobId + " already ended: " + state.phase()));
    }
    return Effect()
        .persist(new JobCancelled())
        .thenRun(s -> stopWorkers(s, "job cancelled"))
        .thenRun(this::publishStatus)
        .thenReply(cancel.replyTo(), s -> StatusReply.success(s.toStatus(jobId)));
  }

  private ReplyEffect<Event, State> onWorkerReady(State state, WorkerReady ready) {
    if (!isCurrent(state, ready.generation())) {
      return Effect().noReply();
    }
    readyPeers.put(ready.rank(), ready.peer());
    context.getLog().info("job {} generation {}: rank {} ready on {}", jobId, ready.generation(), ready.rank(), ready.device());
    if (readyPeers.size() == state.worldSize()) {
      List<ActorRef<RingMessage>> ring = new ArrayList<>(readyPeers.values());
      for (int rank = 0; rank < state.worldSize(); rank++) {
        worker(rank).tell(new DeviceWorker.Begin(state.generation(), ring));
      }
      readyPeers.clear();
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onWorkerFailed(State state, WorkerFailed failed) {
    if (state.phase().isTerminal() || failed.generation() != state.generation()) {
      return Effect().noReply();
    }
    if (failed.rank() < 0) {
      // Our own restart: the workers of the old generation are gone or fenced; form a new one.
      return Effect()
          .persist(new GenerationStarted(state.generation() + 1, state.spec().workers(), 0, failed.reason()))
          .thenRun(s -> stopWorkersOf(state.generation(), s.worldSize(), "new generation"))
          .thenRun(this::prepareWorkers)
          .thenRun(this::publishStatus)
          .thenNoReply();
    }
    String reason = "rank " + failed.rank() + " failed: " + failed.reason();
    context.getLog().error("job {} generation {}: {}", jobId, failed.generation(), reason);
    return Effect()
        .persist(new JobFailed(reason))
        .thenRun(s -> stopWorkers(s, reason))
        .thenRun(this::publishStatus)
        .thenNoReply();
  }

  private ReplyEffect<Event, State> onStepProgress(State state, StepProgress progress) {
    if (isCurrent(state, progress.generation())) {
      publish(new Progress(progress.epoch() + 1, progress.step(), progress.stepsPerEpoch(), progress.meanLoss()));
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onEpochReport(State state, EpochReport report) {
    if (!isCurrent(state, report.generation())) {
      return Effect().noReply();
    }
    Map<Integer, EpochReport> reports = epochReports.computeIfAbsent(report.epoch(), e -> new TreeMap<>());
    reports.put(report.rank(), report);
    if (reports.size() < state.worldSize()) {
      return Effect().noReply();
    }
    epochReports.remove(report.epoch());
    EpochMetrics metrics = sum(report.epoch(), reports.values(), state.worldSize());
    return Effect()
        .persist(new EpochCompleted(metrics, report.stepsDone()))
        .thenRun(s -> publish(new EpochFinished(metrics)))
        .thenNoReply();
  }

  private ReplyEffect<Event, State> onWorkerFinished(State state, WorkerFinished done) {
    if (!isCurrent(state, done.generation())) {
      return Effect().noReply();
    }
    finished.put(done.rank(), done.digest());
    if (finished.size() < state.worldSize()) {
      return Effect().noReply();
    }
    Set<String> digests = new HashSet<>(finished.values());
    finished.clear();
    Event outcome;
    if (digests.size() != 1) {
      outcome = new JobFailed("replicas diverged: ranks ended with different parameters " + digests);
    } else {
      double accuracy = state.epochs().isEmpty()
          ? Double.NaN
          : state.epochs().get(state.epochs().size() - 1).testAccuracy();
      outcome = new JobSucceeded(accuracy, digests.iterator().next());
    }
    return Effect()
        .persist(outcome)
        .thenRun(s -> stopWorkers(s, "job ended"))
        .thenRun(this::publishStatus)
        .thenNoReply();
  }

  private boolean isCurrent(State state, long generation) {
    return !state.phase().isTerminal() && generation == state.generation();
  }

  private static EpochMetrics sum(int epoch, Iterable<EpochReport> reports, int worldSize) {
    double loss = 0;
    long correct = 0;
    long examples = 0;
    long testCorrect = 0;
    long testExamples = 0;
    long slowest = 1;
    for (EpochReport r : reports) {
      loss += r.lossSum();
      correct += r.correct();
      examples += r.examples();
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
        worldSize);
  }

  private void prepareWorkers(State state) {
    readyPeers.clear();
    epochReports.clear();
    finished.clear();
    for (int rank = 0; rank < state.worldSize(); rank++) {
      worker(rank).tell(new DeviceWorker.Prepare(
          jobId, state.spec(), state.generation(), rank, state.worldSize(), context.getSelf()));
    }
  }

  private void stopWorkers(State state, String reason) {
    stopWorkersOf(state.generation(), state.worldSize(), reason);
  }

  private void stopWorkersOf(long generation, int worldSize, String reason) {
    for (int rank = 0; rank < worldSize; rank++) {
      worker(rank).tell(new DeviceWorker.Stop(generation, reason));
    }
  }

  private EntityRef<DeviceWorker.Command> worker(int rank) {
    return sharding.entityRefFor(DeviceWorker.ENTITY_KEY, DeviceWorker.entityId(jobId, rank));
  }

  private void publishStatus(State state) {
    publish(new StatusChanged(state.toStatus(jobId)));
  }

  private void publish(JobUpdate update) {
    watchers.forEach(w -> w.tell(update));
  }
}
