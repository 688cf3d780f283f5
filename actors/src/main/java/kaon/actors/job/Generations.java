package kaon.actors.job;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.metrics.GenerationReasons;
import kaon.actors.metrics.KaonMetrics;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.WorkerReport;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;

/**
 * The coordinator's part that forms, launches and re-forms a job's generations. What it does with
 * the current generation is one {@link Activity} at a time, and each procedure is a child actor
 * whose life is that activity: a {@link GenerationSurvey} while re-forming, a {@link
 * GenerationLaunch} while launching, a {@link GrowthWatch} while a generation is below the job's
 * maximum. The decisions are pure: {@link GenerationPlanner} chooses members and state source,
 * {@link FailurePolicy} what a rank's failure leads to, {@link GrowthPolicy} when to grow.
 *
 * <p>Runs on the coordinator's thread, inside its command handlers; nothing here outlives the
 * coordinator (after a restart, the journal says which generation is current, and a re-attach
 * finds out whether it still trains).
 */
final class Generations {

  /** How long a node seen to end is not waited for: well past its downing and removal (cluster.conf). */
  private static final Duration LOST_NODE_MEMORY = Duration.ofSeconds(60);

  /** What the coordinator gives this part. */
  interface Port {
    /** Persists {@code event} once the journal answers (the journal gate), then runs {@code after}. */
    ReplyEffect<JobEvent, JobState> persistWhenReachable(JobEvent event, Consumer<JobState> after);

    /** Surveys again for a generation after {@code afterGeneration} in {@code delay}. */
    void reformAfter(Duration delay, long afterGeneration, String reason);

    void publishStatus(JobState state);

    /** A generation starts: reports and results of the previous one no longer count. */
    void generationStarting();

    /** Whether epoch {@code epoch}'s result waits for the journal (recorded, not yet written). */
    boolean epochWaitsForJournal(int epoch);
  }

  /** Where the children answer: adapters into the coordinator's protocol. */
  record Replies(ActorRef<GenerationSurvey.Found> surveys, ActorRef<GenerationLaunch.Outcome> launches,
      ActorRef<GrowthWatch.Grow> growth, ActorRef<WorkerReport> reports, ActorRef<NodeLiveness.NodeGone> nodes) {}

  /** What is being done with the current generation. */
  sealed interface Activity {}

  /** Nothing: the job is not submitted, has ended, or another coordinator runs it. */
  record Idle() implements Activity {}

  /** Getting the generation going. */
  record Launching(ActorRef<GenerationLaunch.Command> launch) implements Activity {}

  /** Every rank trains. */
  record Training() implements Activity {}

  /** Forming the next generation: a survey, a backoff, a wait for devices, or its event waiting for the journal. */
  record Reforming() implements Activity {}

  private final ActorContext<?> context;
  private final String jobId;
  private final JobWorkers workers;
  private final JobCheckpoints checkpoints;
  private final JobSettings settings;
  private final JobHealth health;
  private final Replies replies;
  private final RankPlacements placements;
  /** Nodes seen to end lately: re-forming does not wait for them (see {@link LostNodes}). */
  private final LostNodes lost = new LostNodes(LOST_NODE_MEMORY);
  private final Port port;
  private final EffectFactories<JobEvent, JobState> effect;
  private final FailurePolicy failures;
  private final GrowthPolicy growth;
  private final KaonMetrics metrics;
  /** When the fault that ended the last training generation struck; -1 when none is pending. */
  private long faultAt = -1;
  private Activity activity = new Idle();
  private int failuresWithoutProgress;
  /** Delay before reading checkpoints again after the store failed; null after a success. */
  private Duration readRetry;
  private ActorRef<GrowthWatch.Command> growthWatch;
  /** The training generation's spare being stood by ({@link SpareRank}); null when none. */
  private ActorRef<SpareRank.Message> spare;

  Generations(ActorContext<?> context, String jobId, JobWorkers workers, JobCheckpoints checkpoints, JobSettings settings,
      JobHealth health, Replies replies, RankPlacements placements, Port port, EffectFactories<JobEvent, JobState> effect) {
    this.context = context;
    this.metrics = KaonMetrics.get(context.getSystem());
    this.jobId = jobId;
    this.workers = workers;
    this.checkpoints = checkpoints;
    this.settings = settings;
    this.health = health;
    this.replies = replies;
    this.placements = placements;
    this.port = port;
    this.effect = effect;
    this.failures = new FailurePolicy(settings.failuresBeforeGiveUp(), settings.reformBackoffMin(), settings.reformBackoffMax());
    this.growth = GrowthPolicy.of(settings);
  }

  Activity activity() {
    return activity;
  }

  /** Prepares the generation the journal just recorded; its state comes as {@code source} says. */
  void prepare(JobState.Active state, long resumeStep, StateSource source, int sourceRank, int sourceBytes) {
    List<GenerationInfo> history = state.course().history();
    metrics.generationFormed(jobId, history.isEmpty() ? "" : history.get(history.size() - 1).reason());
    launch(state, GenerationLaunch::prepare, resumeStep, source, sourceRank, sourceBytes);
  }

  /** After recovery: asks the ranks of the current generation whether they still train it. */
  void reattach(JobState.Active state) {
    launch(state, GenerationLaunch::reattach, state.course().stepsDone(), state.course().stateSource(), -1, 0);
  }

  /**
   * Starts forming the next generation after {@code afterGeneration}: the survey stops the current
   * members at a step boundary (they keep their state) and finds what there is to form from.
   */
  ReplyEffect<JobEvent, JobState> reform(JobState.Active state, long afterGeneration, String reason) {
    if (activity instanceof Reforming || state.course().generation() != afterGeneration) {
      return effect.noReply();
    }
    stopChildren();
    reforming(reason);
    return survey(state, afterGeneration, reason);
  }

  private long reportableThrough(JobState.Course course) {
    return GenerationPlanner.reportableThrough(course.epochs(), port::epochWaitsForJournal, course.spec().epochs());
  }

  /** Surveys (again) for the generation after {@code afterGeneration}, if the job still re-forms from it. */
  ReplyEffect<JobEvent, JobState> survey(JobState.Active state, long afterGeneration, String reason) {
    JobState.Course course = state.course();
    if (course.generation() == afterGeneration && activity instanceof Reforming) {
      Set<String> lostNodes = lost.current(System.nanoTime());
      Set<Integer> lostMembers = new TreeSet<>();
      LostNodes.on(lostNodes, placements.of(course)).forEach(rank -> lostMembers.add(rank.worker()));
      context.spawnAnonymous(GenerationSurvey.create(new GenerationSurvey.Request(jobId, afterGeneration, reason,
          course.members(), course.nextMember(), course.minWorkers(), course.newestCheckpoints(checkpoints.keepLast()),
          lostMembers, lostNodes, reportableThrough(course)), workers, checkpoints, settings, replies.surveys()));
    }
    return effect.noReply();
  }

  /** The survey's findings: wait, retry the store, or record the generation the planner chose. */
  ReplyEffect<JobEvent, JobState> onSurveyed(JobState.Active state, GenerationSurvey.Found found) {
    JobState.Course course = state.course();
    if (course.generation() != found.afterGeneration() || !(activity instanceof Reforming)) {
      return effect.noReply();
    }
    if (found.storeError() != null) {
      // The store is unreachable, which says nothing about the checkpoints: try again, less
      // often the longer it lasts.
      readRetry = readRetry == null ? settings.persistRetryMin() : min(readRetry.multipliedBy(2), settings.checkpointReadRetryMax());
      context.getLog().warn("job {}: cannot read checkpoints ({}); retrying in {} ms", jobId, found.storeError(),
          readRetry.toMillis());
      setHealth(state, JobHealth.Problem.CHECKPOINT_READS,
          "cannot read checkpoints (" + found.storeError() + "); retrying every " + readRetry.toMillis() + " ms");
      port.reformAfter(readRetry, found.afterGeneration(), found.reason());
      return effect.noReply();
    }
    readRetry = null;
    health.clear(JobHealth.Problem.CHECKPOINT_READS);
    // The bound again, now: late reports of the ending generation may have completed the epoch.
    long reportable = reportableThrough(course);
    GenerationPlanner.Plan plan = GenerationPlanner.plan(found.survey(), course.minWorkers(), course.maxWorkers(),
        found.checkpoint(), member -> WorkerEntity.entityId(jobId, member), reportable);
    if (plan instanceof GenerationPlanner.Wait wait) {
      // Below its minimum the job waits for devices, says so, and looks again shortly. The
      // members keep their state meanwhile (for as long as they hold their devices).
      setHealth(state, JobHealth.Problem.WAITING_FOR_DEVICES, wait.reason());
      port.reformAfter(settings.deviceWaitInterval(), found.afterGeneration(), found.reason());
      return effect.noReply();
    }
    health.clear(JobHealth.Problem.WAITING_FOR_DEVICES);
    GenerationPlanner.Form form = (GenerationPlanner.Form) plan;
    String reason = JobEvent.shortened(found.reason()
        + (found.skipped().isEmpty() ? "" : "; skipped damaged checkpoints: " + found.skipped())
        + (found.survey().newestHeldStep() > reportable && form.source() instanceof StateSource.Checkpoint
            ? "; resumed before step " + reportable + ", the end of an epoch whose result was lost, to report it" : ""));
    context.getLog().info("job {}: generation {} of {} ranks resumes at step {} from {} (workers {}; {})", jobId,
        course.generation() + 1, form.members().size(), form.resumeStep(), form.source(), form.members(), reason);
    // The members so far and the orphans the survey found: those the new generation leaves out
    // give their devices back.
    List<Integer> before = new java.util.ArrayList<>(course.members());
    before.addAll(found.survey().orphans());
    // Still re-forming until the generation is recorded: nothing else may start one meanwhile.
    return port.persistWhenReachable(new JobEvent.GenerationStarted(course.generation() + 1, form.members().size(),
        form.resumeStep(), reason, form.source(), form.members(), System.currentTimeMillis()), s -> {
          if (!(s instanceof JobState.Active active)) {
            // The gate wrote an end held before this generation in the same batch (the ranks had
            // finished, or the job failed): the end stops the workers; there is nothing to start.
            return;
          }
          long generation = active.course().generation();
          // Workers the job no longer has give their devices (and their state) back.
          before.stream().filter(id -> !form.members().contains(id)).forEach(id ->
              workers.member(id).tell(new DeviceWorker.Stop(generation, "not in generation " + generation, false)));
          prepare(active, form.resumeStep(), form.source(), form.sourceRank(), form.sourceBytes());
          port.publishStatus(s);
        });
  }

  /** How a launch child is made: a prepare, or a re-attach after recovery. */
  private interface LaunchKind {
    Behavior<GenerationLaunch.Command> create(GenerationLaunch.Generation generation, JobWorkers workers, JobSettings settings,
        ActorRef<GenerationLaunch.Outcome> replyTo);
  }

  private void launch(JobState.Active state, LaunchKind kind, long resumeStep, StateSource source, int sourceRank,
      int sourceBytes) {
    JobState.Course course = state.course();
    stopChildren();
    port.generationStarting();
    GenerationLaunch.Generation generation = new GenerationLaunch.Generation(jobId, course.spec(), course.generation(),
        course.members(), resumeStep, source instanceof StateSource.Checkpoint c ? c.id() : "",
        source instanceof StateSource.Memory, sourceRank, sourceBytes, replies.reports());
    activity = new Launching(context.spawnAnonymous(kind.create(generation, workers, settings, replies.launches())));
    watchGrowth(course);
  }

  private void watchGrowth(JobState.Course course) {
    if (course.worldSize() < course.maxWorkers()) {
      growthWatch = context.spawnAnonymous(GrowthWatch.create(jobId, course.generation(), course.worldSize(),
          course.maxWorkers(), workers, growth, replies.growth()));
    }
  }

  /** The launch ended: the generation trains, or the job forms another one. */
  ReplyEffect<JobEvent, JobState> onLaunched(JobState.Active state, GenerationLaunch.Outcome outcome) {
    long generation = state.course().generation();
    if (outcome.generation() != generation || !(activity instanceof Launching)) {
      return effect.noReply();
    }
    activity = new Training();
    if (outcome instanceof GenerationLaunch.NotLaunched not) {
      return reform(state, generation, not.reason());
    }
    standBy(state);
    return effect.noReply();
  }

  /** The job re-forms for {@code reason}: a fault's time counts until the job trains again. */
  private void reforming(String reason) {
    activity = new Reforming();
    if (faultAt < 0 && GenerationReasons.answersAFault(GenerationReasons.of(reason))) {
      faultAt = System.nanoTime();
    }
  }

  /**
   * Rank 0 of the training generation reported where it is: the first report after a fault is
   * when the job trained again ({@code kaon_resume_seconds}).
   */
  void stepsReported() {
    if (faultAt >= 0 && activity instanceof Training) {
      metrics.resumed(jobId, System.nanoTime() - faultAt);
      faultAt = -1;
    }
  }

  /** The cluster readies itself for the loss of one of the training generation's ranks ({@link SpareRank}). */
  private void standBy(JobState.Active state) {
    JobState.Course course = state.course();
    if (spare != null) {
      context.stop(spare);
    }
    spare = context.spawnAnonymous(SpareRank.create(jobId, course.generation(), course.spec().task(), course.nextMember(),
        workers));
  }

  /** A rank's answer to the launch in progress, if any. */
  void toLaunch(WorkerReport report) {
    if (activity instanceof Launching launching) {
      launching.launch().tell(new GenerationLaunch.Report(report));
    }
  }

  /** The growth watch found devices: the job grows if it trains that generation. */
  ReplyEffect<JobEvent, JobState> onMayGrow(JobState.Active state, GrowthWatch.Grow grow) {
    return grow.generation() == state.course().generation() && activity instanceof Training
        ? reform(state, grow.generation(), grow.reason())
        : effect.noReply();
  }

  /**
   * A node asked to join ({@code up} false: if the job trains, the node warms its task now, while
   * the cluster moves it to up), or is up: if the job trains, it readies itself for the job's task
   * (and a spare may stand by on it), the growth watch, if any, looks at it, and a node lost at
   * its address is forgotten.
   */
  void nodeJoined(JobState.Active state, String address, boolean up) {
    // While a generation forms, a warm-up would take the cores its ranks prepare on; and the
    // coordinator hears every member as joined when it starts. Once it trains, the job stands by.
    if (!up) {
      if (activity instanceof Training) {
        workers.warm(state.course().spec().task());
      }
      return;
    }
    if (activity instanceof Training) {
      standBy(state);
    }
    lost.joined(address);
    if (growthWatch != null) {
      growthWatch.tell(new GrowthWatch.NodeUp(address));
    }
  }

  /** The bounds grew while the generation trains at its size: devices may be free for it. */
  void boundsChanged(JobState.Active state) {
    if (activity instanceof Training) {
      if (growthWatch != null) {
        context.stop(growthWatch);
        growthWatch = null;
      }
      watchGrowth(state.course());
    }
  }

  /**
   * A rank said where it runs: its node is watched from now on (see {@link #onNodeLost}). Whether
   * that changed what is known of the generation's placement.
   */
  boolean placed(WorkerReport.Placed placed) {
    if (placed.liveness() != null) {
      workers.watchNode(placed.liveness(), replies.nodes());
    }
    return placements.placed(placed);
  }

  /** This coordinator stops: it watches no node any more. */
  void unwatchNodes() {
    workers.unwatchNodes(replies.nodes());
  }

  /**
   * The process of a node that runs ranks of this generation ended: they are lost, and the job
   * re-forms now, as if one of them had failed, rather than when the ring's deadline or the
   * cluster's failure detector says so; nor does its survey wait for the ranks or devices there.
   */
  ReplyEffect<JobEvent, JobState> onNodeLost(JobState.Active state, NodeLiveness.NodeGone gone, boolean ending) {
    String node = gone.node().node();
    lost.lost(node, System.nanoTime());
    JobState.Course course = state.course();
    List<RankPlacement> ranks = LostNodes.on(Set.of(node), placements.of(course));
    if (ranks.isEmpty()) {
      return effect.noReply();
    }
    context.getLog().warn("job {} generation {}: node {} {}: its process is gone, and with it ranks {}", jobId,
        course.generation(), node, gone.how(), ranks.stream().map(RankPlacement::rank).toList());
    return onRankFailed(state, new WorkerReport.Failed(course.generation(), ranks.get(0).rank(),
        "its node " + node + " " + gone.how() + " (its process is gone)", true, false), ending);
  }

  /** A rank failed: re-form now or after a backoff, or give up (see {@link FailurePolicy}). */
  ReplyEffect<JobEvent, JobState> onRankFailed(JobState.Active state, WorkerReport.Failed failed, boolean ending) {
    if (ending || failed.retryable() && activity instanceof Reforming) {
      // The job is ending, or another rank of this generation already led to a new one.
      return effect.noReply();
    }
    String reason = JobEvent.shortened("rank " + failed.rank() + " failed: " + failed.reason());
    if (failed.noDevice()) {
      // Devices went away between the census and the placement (a node being removed).
      setHealth(state, JobHealth.Problem.WAITING_FOR_DEVICES, "waiting for devices: " + failed.reason());
    }
    FailurePolicy.Verdict verdict = failures.decide(reason, failed.retryable(), failed.noDevice(), failuresWithoutProgress);
    failuresWithoutProgress = verdict.failuresWithoutProgress();
    if (verdict instanceof FailurePolicy.ReformNow) {
      context.getLog().warn("job {} generation {}: {}; forming a new generation", jobId, failed.generation(), reason);
      return reform(state, state.course().generation(), reason);
    } else if (verdict instanceof FailurePolicy.ReformAfter after) {
      context.getLog().warn("job {} generation {}: {}; forming a new generation in {} s", jobId, failed.generation(), reason,
          after.backoff().toSeconds());
      stopChildren();
      reforming(reason);
      stopWorkers(state, reason, true);
      port.reformAfter(after.backoff(), state.course().generation(), reason);
      return effect.noReply();
    }
    String why = ((FailurePolicy.GiveUp) verdict).reason();
    context.getLog().error("job {} generation {}: {}", jobId, failed.generation(), why);
    return port.persistWhenReachable(new JobEvent.JobFailed(why, System.currentTimeMillis()), s -> {}); // ended once recorded
  }

  /** An epoch or a checkpoint was recorded: failures since are no longer "in a row". */
  void progressed() {
    failuresWithoutProgress = 0;
  }

  /** Nothing more to do for the job here (it ended, or another coordinator runs it). */
  void idle() {
    stopChildren();
    activity = new Idle();
  }

  /** Stops the current members; {@code keepDevices} while the job re-forms, so the next generation finds them. */
  void stopWorkers(JobState state, String reason, boolean keepDevices) {
    JobState.Course course = JobState.courseOf(state);
    if (course != null) {
      course.members().forEach(id -> workers.member(id).tell(new DeviceWorker.Stop(course.generation(), reason, keepDevices)));
    }
  }

  private void stopChildren() {
    if (activity instanceof Launching launching) {
      context.stop(launching.launch());
    }
    if (growthWatch != null) {
      context.stop(growthWatch);
      growthWatch = null;
    }
    if (spare != null) {
      context.stop(spare); // its generation ends: the next one stands its own spare by
      spare = null;
    }
  }

  private void setHealth(JobState state, JobHealth.Problem problem, String words) {
    if (health.set(problem, words)) {
      port.publishStatus(state);
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }
}
