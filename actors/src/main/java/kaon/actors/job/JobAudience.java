package kaon.actors.job;

import java.util.HashSet;
import java.util.Set;
import java.util.function.Consumer;
import kaon.actors.metrics.KaonMetrics;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * Who hears about a job from its coordinator, and what they hear: the status, with the
 * coordinator's view of its health and of where the ranks run; the watchers, who get every update;
 * and the job's host, which keeps the newest status to answer with while no coordinator runs.
 * Plain state of one coordinator, used on its thread.
 */
final class JobAudience {

  private final String jobId;
  private final Consumer<JobStatus> host;
  private final JobHealth health;
  private final RankPlacements placements;
  private final String node;
  private final Set<ActorRef<JobUpdate>> watchers = new HashSet<>();
  // Rank 0's newest progress and its generation: shown only while that generation is current.
  private JobProgress progress;
  private long progressGeneration = -1;

  /**
   * The audience of {@code jobId}, whose coordinator runs on {@code node}; {@code host} takes the
   * status for the job's host.
   */
  private final KaonMetrics metrics;

  JobAudience(String jobId, Consumer<JobStatus> host, JobHealth health, RankPlacements placements, String node,
      KaonMetrics metrics) {
    this.metrics = metrics;
    this.jobId = jobId;
    this.host = host;
    this.health = health;
    this.placements = placements;
    this.node = node;
  }

  /** The job's status in {@code state}, as the coordinator sees it now. */
  JobStatus status(JobState state) {
    JobStatus status = state.toStatus(jobId, health.line(), node).withRanks(placements.of(JobState.courseOf(state)));
    boolean current = progressGeneration == status.generation() && !status.phase().isTerminal();
    return status.withProgress(current ? progress : null);
  }

  /**
   * Rank 0 of {@code generation} said where it is: watchers hear it at once, and the status shows it
   * until the next generation forms (or the job ends).
   */
  void progressed(long generation, JobProgress newest) {
    progress = newest;
    progressGeneration = generation;
    publish(new JobUpdate.Progress(newest));
  }

  /** {@code watcher} hears every update from now on, starting with the status in {@code state}. */
  void watch(ActorRef<JobUpdate> watcher, JobState state) {
    watchers.add(watcher);
    watcher.tell(new JobUpdate.StatusChanged(status(state)));
  }

  void unwatch(ActorRef<JobUpdate> watcher) {
    watchers.remove(watcher);
  }

  /** The status changed: the watchers and the host hear it. */
  void publishStatus(JobState state) {
    JobStatus status = status(state);
    noted(status);
    host.accept(status);
    publish(new JobUpdate.StatusChanged(status));
  }

  /** Tells the host the status without an update for the watchers (after recovery). */
  void noteStatus(JobState state) {
    JobStatus status = status(state);
    noted(status);
    host.accept(status);
  }

  void publish(JobUpdate update) {
    if (update instanceof JobUpdate.EpochFinished epoch) {
      metrics.samplesPerSecond(jobId, epoch.metrics().samplesPerSecond());
    }
    watchers.forEach(w -> w.tell(update));
  }

  /** The coordinator stopped here (the job ended, or moved): this node no longer counts it. */
  void stopped() {
    metrics.jobLeft(jobId);
  }

  private void noted(JobStatus status) {
    metrics.jobPhase(jobId, status.phase().name().toLowerCase(java.util.Locale.ROOT));
    metrics.jobHealth(jobId, !status.phase().isTerminal() && !status.health().isEmpty());
  }
}
