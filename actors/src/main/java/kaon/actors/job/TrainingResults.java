package kaon.actors.job;

import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.worker.WorkerReport;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.slf4j.Logger;

/**
 * The coordinator's part that records what training produces: epochs once every rank reported
 * them (summed by {@link RankReports}), checkpoints rank 0 wrote, and the job's outcome once every
 * rank finished. Each goes through the journal gate, and the reports it came from are
 * acknowledged only once it is persisted; a report sent again after that is acknowledged at once,
 * one sent again while its event waits is left for the ack that follows the write.
 *
 * <p>Runs on the coordinator's thread, inside its command handlers.
 */
final class TrainingResults {

  /** What the coordinator gives this part. */
  interface Port {
    /** Persists {@code event} once the journal answers (the journal gate), then runs {@code after}. */
    ReplyEffect<JobEvent, JobState> persistWhenReachable(JobEvent event, Consumer<JobState> after);

    /** Acknowledges report {@code seq} of rank {@code rank}, if it is a rank of the current generation. */
    void ack(JobState state, long generation, int rank, long seq);

    void publish(JobUpdate update);

    void publishStatus(JobState state);

    /** An epoch or a checkpoint is on its way to the journal: the job makes progress. */
    void progressed();
  }

  private final String jobId;
  private final Logger log;
  private final JournalGate gate;
  private final JobHealth health;
  private final JobCheckpoints checkpoints;
  private final Port port;
  private final EffectFactories<JobEvent, JobState> effect;
  private RankReports reports = new RankReports();
  /** Checkpoints this coordinator has deleted, of those the job's state remembers. */
  private final Set<String> deleted = new HashSet<>();
  /** The next pruning lists the store (see {@link #prune}): once per coordinator and generation. */
  private boolean sweepDue = true;

  TrainingResults(String jobId, Logger log, JournalGate gate, JobHealth health, JobCheckpoints checkpoints, Port port,
      EffectFactories<JobEvent, JobState> effect) {
    this.jobId = jobId;
    this.log = log;
    this.gate = gate;
    this.health = health;
    this.checkpoints = checkpoints;
    this.port = port;
    this.effect = effect;
  }

  /** A generation starts: reports of the previous one no longer count, nor do its ranks' problems. */
  void newGeneration() {
    sweepDue = true;
    reports = new RankReports();
    health.clearRanks();
  }

  ReplyEffect<JobEvent, JobState> onEpoch(JobState.Active state, WorkerReport.EpochReport report) {
    if (state.course().epochs().stream().anyMatch(m -> m.epoch() == report.epoch() + 1)) {
      // Already persisted (a resend after our restart): only the ack was missing.
      port.ack(state, report.generation(), report.rank(), report.seq());
      return effect.noReply();
    }
    if (gate.holdsEpoch(report.epoch() + 1)) {
      return effect.noReply();
    }
    Optional<RankReports.Completed> completed = reports.addEpoch(report, state.course().worldSize());
    if (completed.isEmpty()) {
      return effect.noReply();
    }
    port.progressed();
    RankReports.Completed done = completed.get();
    return port.persistWhenReachable(new JobEvent.EpochCompleted(done.metrics(), done.stepsDone()), s -> {
      done.reports().forEach(r -> port.ack(s, r.generation(), r.rank(), r.seq()));
      port.publish(new JobUpdate.EpochFinished(done.metrics()));
    });
  }

  ReplyEffect<JobEvent, JobState> onCheckpoint(JobState.Active state, WorkerReport.CheckpointWritten written) {
    CheckpointInfo info = written.checkpoint();
    if (state.course().checkpoints().stream().anyMatch(c -> c.id().equals(info.id()))) {
      port.ack(state, written.generation(), written.rank(), written.seq());
      return effect.noReply();
    }
    if (gate.holdsCheckpoint(info.id())) {
      return effect.noReply();
    }
    port.progressed();
    return port.persistWhenReachable(new JobEvent.CheckpointCommitted(info), s -> {
      log.info("job {}: checkpoint at step {} committed ({} bytes)", jobId, info.step(), info.bytes());
      port.ack(s, written.generation(), written.rank(), written.seq());
      prune(s);
    });
  }

  void onCheckpointHealth(JobState.Active state, WorkerReport.CheckpointHealth report) {
    if (health.setRank(report.rank(), report.problem())) {
      port.publishStatus(state);
    }
  }

  ReplyEffect<JobEvent, JobState> onFinished(JobState.Active state, WorkerReport.Finished done) {
    if (gate.endWaiting()) {
      return effect.noReply();
    }
    Optional<RankReports.Outcome> outcome = reports.addFinished(done, state.course().worldSize(), state.course().epochs(),
        gate.waitingEpochs(), System.currentTimeMillis());
    if (outcome.isEmpty()) {
      return effect.noReply();
    }
    List<WorkerReport.Finished> all = outcome.get().reports();
    return port.persistWhenReachable(outcome.get().event(), s -> all.forEach(f -> port.ack(s, f.generation(), f.rank(), f.seq())));
  }

  /**
   * Deletes checkpoints older than the newest {@code keep-last}, and never one of those: after a
   * generation resumed from an earlier step, they are not in step order, and the oldest kept is
   * not the lowest step.
   *
   * <p>Those the job's state remembers are deleted by their keys, without a read. Reading the job's
   * checkpoint rows at every commit would scan the tombstone of every checkpoint deleted before
   * (Cassandra keeps them for days): its cost grew with the job, and after about 100,000
   * checkpoints Cassandra refuses the read, and nothing would be deleted again. Checkpoints written
   * but never committed (their generation ended first) are found by listing the store, once per
   * coordinator and generation, when they come about.
   */
  private void prune(JobState state) {
    JobState.Course course = JobState.courseOf(state);
    List<CheckpointInfo> kept = course.newestCheckpoints(checkpoints.keepLast());
    if (kept.size() < checkpoints.keepLast()) {
      return;
    }
    long lowestKept = kept.stream().mapToLong(CheckpointInfo::step).min().orElse(0);
    Set<String> ids = new HashSet<>();
    kept.forEach(c -> ids.add(c.id()));
    Set<String> remembered = new HashSet<>();
    course.checkpoints().forEach(c -> remembered.add(c.id()));
    deleted.retainAll(remembered);
    List<CheckpointInfo> old = course.checkpoints().stream()
        .filter(c -> c.step() < lowestKept && !ids.contains(c.id()) && !deleted.contains(c.id())).toList();
    CompletionStage<?> deletion;
    if (sweepDue) {
      sweepDue = false;
      deletion = checkpoints.deleteOlderThan(lowestKept, ids); // deletes those the state remembers too
    } else if (!old.isEmpty()) {
      deletion = checkpoints.delete(old);
    } else {
      return;
    }
    old.forEach(c -> deleted.add(c.id()));
    deletion.whenComplete((n, error) -> {
      if (error != null) {
        // The next sweep (a new generation, a new coordinator) deletes them; nothing depends on
        // it now. (The logger, not the actor's context: this runs on the store's thread.)
        log.warn("job {}: deleting old checkpoints failed: {}", jobId, error.getMessage());
      }
    });
  }
}
