package kaon.runtime.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import kaon.runtime.chaos.Observation.Baseline;
import kaon.runtime.chaos.Observation.CheckpointCommitted;
import kaon.runtime.chaos.Observation.CheckpointVerified;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.StepsSeen;

/** What a history holds about one job, in time order: the checker's view of it. */
record JobHistory(String jobId, JobSubmitted submitted, List<GenerationFormed> generations, List<StepsSeen> steps,
    List<CheckpointCommitted> checkpoints, Map<String, CheckpointVerified> verified, List<EpochReported> epochs,
    Optional<JournalRead> journal, Optional<JobEnded> ended, Optional<Baseline> baseline) {

  /** The jobs of a history, in the order they were submitted; observations of jobs never submitted are left out. */
  static List<JobHistory> of(List<Observation> history) {
    List<Observation> ordered = new ArrayList<>(history);
    ordered.sort(Comparator.comparingLong(Observation::atMillis));
    Map<String, Builder> jobs = new LinkedHashMap<>();
    for (Observation o : ordered) {
      if (o instanceof JobSubmitted s) {
        jobs.putIfAbsent(s.jobId(), new Builder(s));
      }
    }
    for (Observation o : ordered) {
      Builder job = jobs.get(jobOf(o));
      if (job != null) {
        job.add(o);
      }
    }
    return jobs.values().stream().map(Builder::build).toList();
  }

  /** The job an observation is about, or null for run-wide ones (faults, the cluster). */
  static String jobOf(Observation o) {
    return o instanceof Observation.OfJob job ? job.jobId() : null;
  }

  /** When the job ended, or never (Long.MAX_VALUE). */
  long endMillis() {
    return ended.map(JobEnded::atMillis).orElse(Long.MAX_VALUE);
  }

  /** Whether the job had been submitted and not yet ended at {@code millis}. */
  boolean runningAt(long millis) {
    return submitted.atMillis() <= millis && millis < endMillis();
  }

  /** The steps of one epoch, as the job's progress said; empty if it never said. */
  OptionalInt stepsPerEpoch() {
    return steps.stream().mapToInt(StepsSeen::stepsPerEpoch).filter(n -> n > 0).findFirst();
  }

  /** The newest committed checkpoint with this id. */
  Optional<CheckpointCommitted> checkpoint(String id) {
    return checkpoints.stream().filter(c -> c.checkpointId().equals(id)).findFirst();
  }

  /** The highest step seen before {@code millis}, or -1. */
  long highestStepBefore(long millis) {
    return steps.stream().filter(s -> s.atMillis() < millis).mapToLong(StepsSeen::step).max().orElse(-1);
  }

  private static final class Builder {
    private final JobSubmitted submitted;
    private final Map<Long, GenerationFormed> generations = new LinkedHashMap<>();
    private final List<GenerationFormed> conflicting = new ArrayList<>();
    private final List<StepsSeen> steps = new ArrayList<>();
    private final Map<String, CheckpointCommitted> checkpoints = new LinkedHashMap<>();
    private final Map<String, CheckpointVerified> verified = new LinkedHashMap<>();
    private final List<EpochReported> epochs = new ArrayList<>();
    private JournalRead journal;
    private JobEnded ended;
    private Baseline baseline;

    Builder(JobSubmitted submitted) {
      this.submitted = submitted;
    }

    void add(Observation o) {
      if (o instanceof GenerationFormed g) {
        // A recorder sees a generation in every status; the same one again is no news, a different
        // one under the same number is kept for the lineage check to report.
        GenerationFormed known = generations.putIfAbsent(g.generation(), g);
        if (known != null && !known.equals(g)) {
          conflicting.add(g);
        }
      } else if (o instanceof StepsSeen s) {
        steps.add(s);
      } else if (o instanceof CheckpointCommitted c) {
        checkpoints.putIfAbsent(c.checkpointId(), c);
      } else if (o instanceof CheckpointVerified v) {
        verified.putIfAbsent(v.checkpointId(), v);
      } else if (o instanceof EpochReported e) {
        epochs.add(e);
      } else if (o instanceof JournalRead j) {
        journal = j;
      } else if (o instanceof JobEnded e && ended == null) {
        ended = e;
      } else if (o instanceof Baseline b) {
        baseline = b;
      }
    }

    JobHistory build() {
      List<GenerationFormed> all = new ArrayList<>(generations.values());
      all.addAll(conflicting);
      all.sort(Comparator.comparingLong(GenerationFormed::generation).thenComparingLong(GenerationFormed::atMillis));
      return new JobHistory(submitted.jobId(), submitted, List.copyOf(all), List.copyOf(steps),
          List.copyOf(checkpoints.values()), Map.copyOf(verified), List.copyOf(epochs), Optional.ofNullable(journal),
          Optional.ofNullable(ended), Optional.ofNullable(baseline));
    }
  }
}
