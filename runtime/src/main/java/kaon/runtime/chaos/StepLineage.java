package kaon.runtime.chaos;

import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import kaon.runtime.chaos.Observation.CheckpointCommitted;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.StepsSeen;

/**
 * Invariant 3, the step lineage of one job: every generation resumed at the step its state source
 * holds (from scratch only at step 0 and only when no checkpoint existed, from a checkpoint at
 * exactly its step, from a survivor's memory never older than what its ranks had committed), the
 * steps never went back within a generation, a job that succeeded trained exactly its steps, and
 * its journal lost no event.
 */
final class StepLineage {

  private StepLineage() {}

  static void check(JobHistory job, List<String> bad, List<String> facts) {
    String id = job.jobId();
    GenerationFormed previous = null;
    for (GenerationFormed g : job.generations()) {
      String at = "job " + id + " generation " + g.generation();
      if (previous != null && g.generation() <= previous.generation()) {
        bad.add(at + " was recorded twice, differently: " + previous + " and " + g);
        continue;
      }
      String source = g.stateSource();
      if (source.equals("init")) {
        if (g.resumeStep() != 0) {
          bad.add(at + " started from scratch but at step " + g.resumeStep());
        }
        committedBefore(job, g.atMillis()).ifPresent(c -> bad.add(at + " started from scratch although checkpoint "
            + c.checkpointId() + " at step " + c.step() + " had been committed"));
      } else if (source.startsWith("checkpoint:")) {
        String checkpoint = source.substring("checkpoint:".length());
        job.checkpoint(checkpoint).ifPresentOrElse(c -> {
          if (c.step() != g.resumeStep()) {
            bad.add(at + " resumed at step " + g.resumeStep() + " from checkpoint " + checkpoint + ", which holds step " + c.step());
          }
        }, () -> bad.add(at + " resumed from checkpoint " + checkpoint + ", which no commit shows"));
      } else if (source.startsWith("memory:")) {
        memoryResume(job, g, previous, source.substring("memory:".length()), at, bad);
      } else {
        bad.add(at + " names an unknown state source '" + source + "'");
      }
      if (previous == null && !source.equals("init")) {
        bad.add(at + " is the job's first, yet did not start from scratch (" + source + ")");
      }
      previous = g;
    }
    if (job.generations().isEmpty() && job.ended().map(e -> e.phase().equals("SUCCEEDED")).orElse(false)) {
      bad.add("job " + id + " succeeded with no generation recorded");
    }
    samplesInOrder(job, bad);
    finalSteps(job, bad);
    job.journal().ifPresent(j -> {
      if (!j.missing().isEmpty()) {
        bad.add("job " + id + ": its journal lacks events " + j.missing() + " (acknowledged writes lost)");
      }
    });
    facts.add("job " + id + ": " + job.generations().size() + " generations, each resumed where its state came from");
  }

  private static Optional<CheckpointCommitted> committedBefore(JobHistory job, long millis) {
    return job.checkpoints().stream().filter(c -> c.atMillis() < millis).max(Comparator.comparingLong(CheckpointCommitted::step));
  }

  /**
   * A generation resumed from a survivor's memory: the survivor was in the previous generation, and
   * its state is at least as new as what that generation began from and every checkpoint that
   * generation committed (a checkpoint is written from the ranks' state, so they held its step).
   */
  private static void memoryResume(JobHistory job, GenerationFormed g, GenerationFormed previous, String worker,
      String at, List<String> bad) {
    if (previous == null) {
      return; // reported as a first generation that did not start from scratch
    }
    // The source names the worker's entity, "<job>-worker-<member id>" (WorkerEntity.entityId).
    String prefix = job.jobId() + "-worker-";
    int member;
    try {
      member = worker.startsWith(prefix) ? Integer.parseInt(worker.substring(prefix.length())) : -1;
    } catch (NumberFormatException e) {
      member = -1;
    }
    if (member < 0) {
      bad.add(at + " resumed from the memory of '" + worker + "', which is no worker of the job");
      return;
    }
    if (!previous.workers().contains(member)) {
      bad.add(at + " resumed from worker " + member + "'s memory, but it was not in generation " + previous.generation()
          + " " + previous.workers());
    }
    if (g.resumeStep() < previous.resumeStep()) {
      bad.add(at + " resumed from memory at step " + g.resumeStep() + ", before generation " + previous.generation()
          + " began (" + previous.resumeStep() + ")");
    }
    // Only the previous generation's own checkpoints bound its survivors' state: one committed
    // earlier may belong to a lineage that generation abandoned (it resumed from an older one).
    job.checkpoints().stream()
        .filter(c -> c.atMillis() >= previous.atMillis() && c.atMillis() < g.atMillis() && c.step() >= previous.resumeStep())
        .max(Comparator.comparingLong(CheckpointCommitted::step))
        .filter(c -> c.step() > g.resumeStep())
        .ifPresent(c -> bad.add(at + " resumed from memory at step " + g.resumeStep() + ", older than checkpoint "
            + c.checkpointId() + " at step " + c.step() + " that generation " + previous.generation() + " had written"));
  }

  /** Within one generation the step never goes back, nor below where the generation began. */
  private static void samplesInOrder(JobHistory job, List<String> bad) {
    Map<Long, Long> begun = new HashMap<>();
    job.generations().forEach(g -> begun.putIfAbsent(g.generation(), g.resumeStep()));
    Map<Long, StepsSeen> last = new HashMap<>();
    for (StepsSeen s : job.steps()) {
      Long start = begun.get(s.generation());
      if (start != null && s.step() < start) {
        bad.add("job " + job.jobId() + " generation " + s.generation() + " was seen at step " + s.step()
            + ", below its resume step " + start);
      }
      StepsSeen before = last.put(s.generation(), s);
      if (before != null && s.step() < before.step()) {
        bad.add("job " + job.jobId() + " generation " + s.generation() + " went back from step " + before.step() + " to "
            + s.step() + " without re-forming");
      }
    }
  }

  /** A job that succeeded trained exactly its steps: every epoch's, or up to max-steps. */
  private static void finalSteps(JobHistory job, List<String> bad) {
    JobEnded end = job.ended().orElse(null);
    OptionalInt perEpoch = job.stepsPerEpoch();
    long maxSteps = job.submitted().maxSteps();
    if (end == null || !end.phase().equals("SUCCEEDED") || (perEpoch.isEmpty() && maxSteps <= 0)) {
      return;
    }
    // Without an epoch's steps, max-steps ended the job inside its first epoch.
    long all = perEpoch.isPresent() ? (long) perEpoch.getAsInt() * job.submitted().epochs() : Long.MAX_VALUE;
    long expected = maxSteps > 0 ? Math.min(all, maxSteps) : all;
    if (end.stepsDone() != expected) {
      bad.add("job " + job.jobId() + " succeeded after " + end.stepsDone() + " steps, not " + expected);
    }
  }
}
