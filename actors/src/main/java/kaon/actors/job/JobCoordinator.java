package kaon.actors.job;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.metrics.KaonMetrics;
import kaon.actors.training.JobSpec;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.KryoWireMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReplyBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.apache.pekko.serialization.SerializationExtension;

/**
 * The owner of one job: it forms the job's ranks into generations, starts them, records what they
 * train, and decides when the job has succeeded or failed. It runs inside the job's sharded entity
 * ({@link JobEntity}), under a {@link JobHost} that holds the job's lease and answers for it while
 * its journal is out of reach.
 *
 * <p>A generation is the job's membership at one time. {@link JobEvent.GenerationStarted} is
 * persisted before any worker hears of it, so a generation number is never handed out twice;
 * workers and all-reduce peers fence every message by it. Workers have stable member ids; a
 * generation lists its members in rank order, so a worker that survives keeps its id, its device
 * and its state while its rank changes.
 *
 * <p>Parts by concern, all on this actor's thread: {@link OwnerCommands} answers the owner, {@link
 * Generations} forms and launches generations (with children for the survey, the launch and
 * growth), {@link TrainingResults} records epochs, checkpoints and the outcome, {@link JournalAccess}
 * decides when it may write. Every event but the owner's goes through the {@link JournalGate}:
 * written once the lease is confirmed and the journal answers, and the reports it came from
 * acknowledged only then, so none is lost in a restart.
 *
 * <p>What survives a crash is the journal ({@link JobState}). After recovery a running job asks its
 * ranks whether they still train the current generation; if not all do, a new generation forms
 * from the members' memory, else the newest committed checkpoint that passes its checksum, else 0.
 */
public final class JobCoordinator extends EventSourcedBehaviorWithEnforcedReplies<JobCoordinator.Command, JobEvent, JobState> {

  /** The sharded entity type of jobs, and the prefix of their persistence ids. */
  static final String ENTITY_TYPE = "Job";

  /** What the coordinator accepts. */
  public sealed interface Command permits Submit, GetStatus, Watch, Cancel, Scale, FromWorker, StatusNoted, Recovered,
      HostCommand,
      WatcherStopped, Surveyed, LaunchEnded, Reform, NodeJoined, NodeLost, MayGrow, JournalProbed, ProbeJournal,
      LeaseChecked {}

  /** Starts the job; answered with its status, or refused if this id already holds another job. */
  public record Submit(JobSpec spec, ActorRef<OwnerReply> replyTo) implements Command, KryoWireMessage {}

  /** Answered with the job's status ({@link JobStatus.Phase#UNKNOWN} if never submitted). */
  public record GetStatus(ActorRef<JobStatus> replyTo) implements Command, KryoWireMessage {}

  /** Subscribes {@code watcher} to {@link JobUpdate}s, starting with the current status. */
  public record Watch(ActorRef<JobUpdate> watcher) implements Command, KryoWireMessage {}

  /** Stops the job; refused if it already ended. */
  public record Cancel(ActorRef<OwnerReply> replyTo) implements Command, KryoWireMessage {}

  /**
   * Sets the bounds of the job's world size; a job outside them moves to the nearest bound in a
   * new generation. Refused if the job ended or the bounds are wrong.
   */
  public record Scale(int minWorkers, int maxWorkers, ActorRef<OwnerReply> replyTo) implements Command, KryoWireMessage {}

  /** A report of one of the job's workers, adapted by the host. */
  record FromWorker(WorkerReport report) implements Command {}

  /** To the host: the status after a change, which the host answers with while no coordinator runs. */
  record StatusNoted(JobStatus status) implements Command {}

  /** To the host: {@code coordinator} has recovered from the journal (the host restarts one that does not). */
  record Recovered(ActorRef<Command> coordinator) implements Command {}

  /** The host's own messages ({@link JobHost}): the host shares this protocol, being the job's address. */
  non-sealed interface HostCommand extends Command {}

  // The coordinator's own messages: watchers gone, its children's answers, timers, cluster news.
  private record WatcherStopped(ActorRef<JobUpdate> watcher) implements Command {}
  private record Surveyed(GenerationSurvey.Found found) implements Command {}
  private record LaunchEnded(GenerationLaunch.Outcome outcome) implements Command {}
  /** Time to survey again for a generation after {@code afterGeneration}. */
  private record Reform(long afterGeneration, String reason) implements Command {}
  /** A node asked to join ({@code up} false), or is up. */
  private record NodeJoined(String address, boolean up) implements Command {}
  private record NodeLost(NodeLiveness.NodeGone gone) implements Command {}
  private record MayGrow(GrowthWatch.Grow grow) implements Command {}
  private record JournalProbed(Throwable error) implements Command {}
  private record LeaseChecked(Throwable error) implements Command {}
  private enum ProbeJournal implements Command { INSTANCE }

  private final ActorContext<Command> context;
  private final ActorRef<Command> host;
  private final TimerScheduler<Command> timers;
  private final String jobId;
  private final JobWorkers workers;
  private final JobEffects effects;
  private final JobHealth health = new JobHealth();
  /** Where the current generation's ranks run, as they said. */
  private final RankPlacements placements = new RankPlacements();
  private final JobAudience audience;
  private final RetentionCriteria retention;
  private final JournalGate gate;
  private final JournalAccess journal;
  private final Ports ports = new Ports();
  private final OwnerCommands owner;
  private final Generations generations;
  private final TrainingResults results;
  /** This entity of a job that does not exist is leaving (see {@link Ports#unloadIfUnknown}). */
  private boolean unloading;

  /**
   * The coordinator of job {@code jobId}, whose messages for others name {@code host} as the
   * sender; its workers report to {@code reports}. {@code workers}, {@code checkpoints} and
   * {@code effects} are its ways out: sharded entities, the store and the lease in a cluster, test
   * probes in a test of the coordinator alone.
   */
  static Behavior<Command> create(String jobId, ActorRef<Command> host, ActorRef<WorkerReport> reports, JobWorkers workers,
      JobCheckpoints checkpoints, JobSettings settings, JobEffects effects) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers ->
        new JobCoordinator(context, timers, jobId, host, reports, workers, checkpoints, settings, effects)));
  }

  private JobCoordinator(ActorContext<Command> context, TimerScheduler<Command> timers, String jobId, ActorRef<Command> host,
      ActorRef<WorkerReport> reports, JobWorkers workers, JobCheckpoints checkpoints, JobSettings settings,
      JobEffects effects) {
    // A failed write (Cassandra down) stops this behavior; its host answers for the job meanwhile
    // and starts it again once the journal answers. It then recovers and re-attaches to its ranks,
    // which have kept training and resend their reports.
    super(PersistenceId.of(ENTITY_TYPE, jobId));
    this.context = context;
    this.host = host;
    this.timers = timers;
    this.jobId = jobId;
    this.workers = workers;
    this.effects = effects;
    this.audience = new JobAudience(jobId, status -> host.tell(new StatusNoted(status)), health, placements,
        effects.nodeAddress(), KaonMetrics.get(context.getSystem()));
    this.retention = RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2);
    this.gate = new JournalGate(settings.persistRetryMin(), settings.persistRetryMax());
    this.journal = new JournalAccess(jobId, context.getLog(), effects, gate, health, () -> lastSequenceNumber(context),
        ports, Effect());
    this.owner = new OwnerCommands(jobId, ports, Effect());
    this.generations = new Generations(context, jobId, workers, checkpoints, settings, health, new Generations.Replies(
        context.messageAdapter(GenerationSurvey.Found.class, Surveyed::new),
        context.messageAdapter(GenerationLaunch.Outcome.class, LaunchEnded::new),
        context.messageAdapter(GrowthWatch.Grow.class, MayGrow::new), reports,
        context.messageAdapter(NodeLiveness.NodeGone.class, NodeLost::new)), placements, ports, Effect());
    this.results = new TrainingResults(jobId, context.getLog(), gate, health, checkpoints, ports, Effect());
    workers.onNodeUp(context.messageAdapter(ClusterEvent.MemberUp.class, m -> new NodeJoined(m.member().address().toString(), true)));
    workers.onNodeJoining(context.messageAdapter(ClusterEvent.MemberJoined.class,
        m -> new NodeJoined(m.member().address().toString(), false)));
  }

  @Override
  public JobState emptyState() {
    return new JobState.Unsubmitted();
  }

  @Override
  public EventHandler<JobState, JobEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent(JobState::apply);
  }

  // Snapshots: one every kaon.job.snapshot-every events, so that a coordinator that moves reads the
  // newest and the events after it, not every event of a long job; and one when the job ends, the
  // last its recoveries need (decided by the event: Pekko passes the state before it when it
  // writes several at once). Events are never deleted: the journal is the job's history.
  @Override
  public RetentionCriteria retentionCriteria() {
    return retention;
  }

  @Override
  public boolean shouldSnapshot(JobState state, JobEvent event, long sequenceNr) {
    return event.endsTheJob();
  }

  @Override
  public SignalHandler<JobState> signalHandler() {
    return newSignalHandlerBuilder().onSignal(RecoveryCompleted.instance(), this::onRecovered)
        .onSignal(PostStop.instance(), state -> {
          generations.unwatchNodes();
          audience.stopped();
        }).build();
  }

  private void onRecovered(JobState state) {
    host.tell(new Recovered(context.getSelf()));
    audience.noteStatus(state);
    if (state instanceof JobState.Active active) {
      context.getLog().info("job {} recovered in generation {}; asking its ranks whether they still train", jobId,
          active.course().generation());
      generations.reattach(active);
    } else if (state instanceof JobState.Ended) {
      effects.passivate();
    }
  }

  @Override
  public CommandHandlerWithReply<Command, JobEvent, JobState> commandHandler() {
    CommandHandlerWithReplyBuilder<Command, JobEvent, JobState> builder = newCommandHandlerWithReplyBuilder();
    builder.forStateType(JobState.Unsubmitted.class)
        .onCommand(Submit.class, (state, submit) -> owner.submit(submit.spec(), submit.replyTo()))
        .onCommand(Cancel.class, (state, cancel) -> owner.unknown(state, cancel.replyTo()))
        .onCommand(Scale.class, (state, scale) -> owner.unknown(state, scale.replyTo()));
    builder.forStateType(JobState.Active.class)
        .onCommand(Submit.class, (state, submit) -> owner.submitAgain(state, submit.spec(), submit.replyTo()))
        .onCommand(Cancel.class, (state, cancel) -> owner.cancel(cancel.replyTo()))
        .onCommand(Scale.class, (state, scale) -> owner.scale(state, scale.minWorkers(), scale.maxWorkers(), scale.replyTo()))
        .onCommand(FromWorker.class, (state, from) -> onReport(state, from.report()))
        .onCommand(Surveyed.class, (state, surveyed) -> generations.onSurveyed(state, surveyed.found()))
        .onCommand(LaunchEnded.class, (state, ended) -> generations.onLaunched(state, ended.outcome()))
        .onCommand(Reform.class, (state, reform) -> generations.survey(state, reform.afterGeneration(), reform.reason()))
        .onCommand(MayGrow.class, (state, may) -> generations.onMayGrow(state, may.grow()))
        .onCommand(NodeLost.class, (state, lost) -> generations.onNodeLost(state, lost.gone(), gate.endWaiting()))
        .onCommand(NodeJoined.class, (state, joined) -> {
          generations.nodeJoined(state, joined.address(), joined.up());
          return Effect().noReply();
        });
    builder.forStateType(JobState.Ended.class)
        .onCommand(Submit.class, (state, submit) -> owner.submitAgain(state, submit.spec(), submit.replyTo()))
        .onCommand(Cancel.class, (state, cancel) -> owner.ended(state, cancel.replyTo()))
        .onCommand(Scale.class, (state, scale) -> owner.ended(state, scale.replyTo()));
    builder.forAnyState()
        .onCommand(GetStatus.class, (state, get) ->
            Effect().none().thenRun(s -> ports.unloadIfUnknown(s)).thenReply(get.replyTo(), audience::status))
        .onCommand(Watch.class, this::onWatch)
        .onCommand(WatcherStopped.class, (state, stopped) -> {
          audience.unwatch(stopped.watcher());
          return Effect().noReply();
        })
        .onCommand(JournalProbed.class, (state, probed) -> journal.onProbed(state, probed.error()))
        .onCommand(ProbeJournal.class, (state, probe) -> journal.probe())
        .onCommand(LeaseChecked.class, (state, checked) -> journal.onLeaseChecked(state, checked.error()))
        // Reports of a job that is not active, and answers of children that are gone, say nothing.
        .onAnyCommand((state, other) -> Effect().noReply());
    return builder.build();
  }

  private ReplyEffect<JobEvent, JobState> onWatch(JobState state, Watch watch) {
    context.watchWith(watch.watcher(), new WatcherStopped(watch.watcher()));
    audience.watch(watch.watcher(), state);
    ports.unloadIfUnknown(state);
    return Effect().noReply();
  }

  /** A report of a rank of the current generation (those of any other are late, and ignored). */
  private ReplyEffect<JobEvent, JobState> onReport(JobState.Active state, WorkerReport report) {
    if (report.generation() != state.course().generation()) {
      return Effect().noReply();
    }
    if (report instanceof WorkerReport.Ready || report instanceof WorkerReport.Reattached
        || report instanceof WorkerReport.NotRunning) {
      generations.toLaunch(report);
    } else if (report instanceof WorkerReport.Failed failed) {
      return generations.onRankFailed(state, failed, gate.endWaiting());
    } else if (report instanceof WorkerReport.Placed placed) {
      if (generations.placed(placed)) {
        audience.publishStatus(state); // watchers see where the ranks run, and how they talk
      }
    } else if (report instanceof WorkerReport.StepProgress p) {
      generations.stepsReported();
      audience.progressed(p.generation(), new JobProgress(p.epoch() + 1, p.step(), p.stepsPerEpoch(), p.meanLoss()));
    } else if (report instanceof WorkerReport.EpochReport epoch) {
      return results.onEpoch(state, epoch);
    } else if (report instanceof WorkerReport.CheckpointWritten written) {
      return results.onCheckpoint(state, written);
    } else if (report instanceof WorkerReport.CheckpointHealth problem) {
      results.onCheckpointHealth(state, problem);
    } else if (report instanceof WorkerReport.Finished finished) {
      return results.onFinished(state, finished);
    }
    return Effect().noReply();
  }

  /** The job ended: stop its workers, tell watchers, and leave memory (and sharding's set). */
  private void end(JobState state, String reason) {
    context.getLog().info("job {} ended: {}", jobId, state.phase());
    generations.idle();
    timers.cancelAll();
    generations.stopWorkers(state, reason, false);
    audience.publishStatus(state);
    effects.passivate();
  }

  /** What the coordinator's parts may ask of it. */
  private final class Ports implements OwnerCommands.Port, Generations.Port, TrainingResults.Port, JournalAccess.Port {

    @Override
    public void setHealth(JobState state, JobHealth.Problem problem, String words) {
      if (health.set(problem, words)) {
        audience.publishStatus(state);
      }
    }

    @Override
    public void stopActing() {
      generations.idle();
      timers.cancelAll();
    }

    @Override
    public void whenProbed(CompletionStage<?> probe) {
      context.pipeToSelf(probe, (ok, error) -> new JournalProbed(error));
    }

    @Override
    public void probeAfter(Duration delay) {
      timers.startSingleTimer(ProbeJournal.INSTANCE, delay);
    }

    @Override
    public void whenLeaseChecked(CompletionStage<?> confirmation) {
      context.pipeToSelf(confirmation, (ok, error) -> new LeaseChecked(error));
    }

    @Override
    public void released(JobState state, List<JobEvent> events, boolean wasDown) {
      if (state instanceof JobState.Ended) {
        end(state, "job ended");
      } else if (wasDown || events.stream().anyMatch(e -> e instanceof JobEvent.CheckpointCommitted)) {
        audience.publishStatus(state);
      }
    }

    @Override
    public ReplyEffect<JobEvent, JobState> persistWhenReachable(JobEvent event, Consumer<JobState> after) {
      return journal.persistWhenReachable(event, after);
    }

    @Override
    public String writeProblem() {
      return journal.writeProblem();
    }

    @Override
    public boolean confirmLeaseFirst() {
      return journal.confirmLeaseFirst();
    }

    @Override
    public int serializedSize(JobEvent event) {
      return SerializationExtension.get(context.getSystem()).serialize(event).get().length;
    }

    @Override
    public JobStatus status(JobState state) {
      return audience.status(state);
    }

    @Override
    public boolean unloading() {
      return unloading;
    }

    /**
     * Asking about a job that does not exist starts its entity, which sharding would then remember
     * forever: such an entity leaves again at once. A Submit that races with that is told to retry.
     */
    @Override
    public void unloadIfUnknown(JobState state) {
      if (state instanceof JobState.Unsubmitted && effects.passivate()) {
        unloading = true;
      }
    }

    @Override
    public void submitted(JobState.Active state) {
      JobSpec spec = state.course().spec();
      context.getLog().info("job {} submitted: task {}, {}..{} workers, {} epochs, global batch {}", jobId, spec.task(),
          spec.minWorkers(), spec.maxWorkers(), spec.epochs(), spec.globalBatch());
      generations.prepare(state, 0, StateSource.INIT, -1, 0);
      audience.publishStatus(state);
    }

    @Override
    public void cancelled(JobState state) {
      end(state, "job cancelled");
    }

    @Override
    public void scaled(JobState.Active state, String reason) {
      if (state.targetWorldSize() != state.course().worldSize()) {
        generations.reform(state, state.course().generation(), reason);
      } else {
        generations.boundsChanged(state);
      }
      audience.publishStatus(state);
    }

    @Override
    public void reformAfter(Duration delay, long afterGeneration, String reason) {
      timers.startSingleTimer(Reform.class, new Reform(afterGeneration, reason), delay);
    }

    @Override
    public void publishStatus(JobState state) {
      audience.publishStatus(state);
    }

    @Override
    public void generationStarting() {
      // Results of the previous generation that never reached the journal are redone by this one.
      gate.dropWaiting();
      results.newGeneration();
    }

    @Override
    public boolean epochWaitsForJournal(int epoch) {
      return gate.holdsEpoch(epoch);
    }

    @Override
    public void ack(JobState state, long generation, int rank, long seq) {
      JobState.Course course = JobState.courseOf(state);
      if (course != null && generation == course.generation() && rank >= 0 && rank < course.members().size()) {
        workers.member(course.members().get(rank)).tell(new DeviceWorker.Ack(generation, seq));
      }
    }

    @Override
    public void publish(JobUpdate update) {
      audience.publish(update);
    }

    @Override
    public void progressed() {
      generations.progressed();
    }
  }
}
