package kaon.actors.job;

import java.util.ArrayList;
import java.util.List;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.checkpoint.CheckpointSettings;
import kaon.actors.training.JobSpec;

/**
 * A job as its journal tells it, in one of three phases: not submitted yet, active (forming or
 * training a generation), or ended. Immutable; each event makes a new state, and each phase says
 * what the events it can meet do to it. Event handlers read nothing but the state and the event:
 * the same journal always rebuilds the same job.
 */
sealed interface JobState permits JobState.Unsubmitted, JobState.Active, JobState.Ended {

  /**
   * Committed checkpoints the state remembers, newest last. A constant of the journal format, not
   * a setting: the checkpoint store keeps {@code kaon.checkpoint.keep-last} of them (at most this
   * many), and the coordinator chooses among those.
   */
  int CHECKPOINTS_REMEMBERED = CheckpointSettings.MAX_KEEP_LAST;

  /** Generations the history keeps: the newest ones, enough to see how the job got here. */
  int HISTORY = 100;

  /** The state after {@code event}. */
  JobState apply(JobEvent event);

  JobStatus.Phase phase();

  /** The job's status, with the coordinator's view of its health and where it runs. */
  JobStatus toStatus(String jobId, String health, String coordinatorNode);

  /** What a submitted job has done; null before it was submitted. */
  static Course courseOf(JobState state) {
    return state instanceof Active a ? a.course() : state instanceof Ended e ? e.course() : null;
  }

  /** No job under this id: the journal is empty. */
  record Unsubmitted() implements JobState {

    @Override
    public JobState apply(JobEvent event) {
      if (event instanceof JobEvent.JobSubmitted s) {
        return new Active(Course.submitted(s.spec(), s.atMillis()), false);
      }
      throw new IllegalStateException("a job's journal starts with JobSubmitted, not " + event);
    }

    @Override
    public JobStatus.Phase phase() {
      return JobStatus.Phase.UNKNOWN;
    }

    @Override
    public JobStatus toStatus(String jobId, String health, String coordinatorNode) {
      return new JobStatus(jobId, JobStatus.Phase.UNKNOWN, null, 0, List.of(), 0, "", null, health, Double.NaN, "", "",
          0, 0, 0, List.of(), coordinatorNode, List.of(), null, 0, 0, 0);
    }
  }

  /** Submitted and not ended; {@code running} once the current generation recorded a result. */
  record Active(Course course, boolean running) implements JobState {

    @Override
    public JobState apply(JobEvent event) {
      if (event instanceof JobEvent.GenerationStarted g) {
        return new Active(course.started(g), false);
      } else if (event instanceof JobEvent.EpochCompleted e) {
        return new Active(course.withEpoch(e), true);
      } else if (event instanceof JobEvent.CheckpointCommitted c) {
        return new Active(course.withCheckpoint(c.checkpoint()), true);
      } else if (event instanceof JobEvent.JobScaled sc) {
        return new Active(course.scaled(sc), running);
      } else if (event instanceof JobEvent.JobSucceeded s) {
        return new Ended(course, JobStatus.Phase.SUCCEEDED, s.testAccuracy(), s.digest(), "", s.atMillis());
      } else if (event instanceof JobEvent.JobFailed f) {
        return new Ended(course, JobStatus.Phase.FAILED, Double.NaN, "", f.reason(), f.atMillis());
      } else if (event instanceof JobEvent.JobCancelled c) {
        return new Ended(course, JobStatus.Phase.CANCELLED, Double.NaN, "", "cancelled by its owner", c.atMillis());
      }
      throw new IllegalStateException("job already submitted: " + event);
    }

    @Override
    public JobStatus.Phase phase() {
      return running ? JobStatus.Phase.RUNNING : JobStatus.Phase.STARTING;
    }

    @Override
    public JobStatus toStatus(String jobId, String health, String coordinatorNode) {
      return course.toStatus(jobId, phase(), health, Double.NaN, "", "", coordinatorNode, 0);
    }

    /** Why bounds {@code min..max} cannot be the job's (the field named first), or null. */
    String scaleProblem(int min, int max) {
      if (min < 1 || max < min) {
        return "min_workers: need 1 <= min_workers <= max_workers, got " + min + ".." + max;
      }
      if (max > course.spec().globalBatch()) {
        return "max_workers: the global batch of " + course.spec().globalBatch() + " cannot be split over " + max + " workers";
      }
      return null;
    }

    /** The world size the next generation gets: the current one, moved inside the bounds. */
    int targetWorldSize() {
      int current = course.worldSize() == 0 ? course.spec().workers() : course.worldSize();
      return Math.max(course.minWorkers(), Math.min(course.maxWorkers(), current));
    }
  }

  /**
   * Succeeded, failed or cancelled, at {@code endedAtMillis} (epoch ms; 0 if the journal did not
   * record it). Results of training that reached the journal in the same write as the end (they
   * waited for it together) are still recorded; nothing else changes an ended job.
   */
  record Ended(Course course, JobStatus.Phase phase, double testAccuracy, String digest, String message,
      long endedAtMillis) implements JobState {

    @Override
    public JobState apply(JobEvent event) {
      if (event instanceof JobEvent.EpochCompleted e) {
        return new Ended(course.withEpoch(e), phase, testAccuracy, digest, message, endedAtMillis);
      } else if (event instanceof JobEvent.CheckpointCommitted c) {
        return new Ended(course.withCheckpoint(c.checkpoint()), phase, testAccuracy, digest, message, endedAtMillis);
      }
      return this;
    }

    @Override
    public JobStatus toStatus(String jobId, String health, String coordinatorNode) {
      return course.toStatus(jobId, phase, health, testAccuracy, digest, message, coordinatorNode, endedAtMillis);
    }
  }

  /**
   * What a submitted job has done: its spec and bounds, its current generation, its finished
   * epochs and committed checkpoints, how its generations came about, and when it was submitted
   * and its first generation formed (epoch ms; 0 if the journal did not record it). The first
   * generation's time is kept here, not read from {@code history}: that keeps only the newest.
   */
  record Course(
      JobSpec spec,
      long generation,
      int worldSize,
      StateSource stateSource,
      List<EpochMetrics> epochs,
      long stepsDone,
      List<CheckpointInfo> checkpoints,
      int minWorkers,
      int maxWorkers,
      List<Integer> members,
      int nextMember,
      List<GenerationInfo> history,
      long createdAtMillis,
      long startedAtMillis) {

    static Course submitted(JobSpec spec, long atMillis) {
      return new Course(spec, 0, 0, StateSource.INIT, List.of(), 0, List.of(), spec.minWorkers(), spec.maxWorkers(),
          List.of(), 0, List.of(), atMillis, 0);
    }

    /** A new generation: epochs finished after its resume point are trained and reported again. */
    Course started(JobEvent.GenerationStarted g) {
      List<EpochMetrics> kept = epochs.stream().filter(m -> m.stepsDone() <= g.resumeStep()).toList();
      int next = Math.max(nextMember, g.members().stream().mapToInt(m -> m + 1).max().orElse(0));
      List<GenerationInfo> longer = new ArrayList<>(history);
      longer.add(new GenerationInfo(g.generation(), g.worldSize(), g.resumeStep(), g.reason(), g.stateSource().toString(),
          g.members(), g.atMillis()));
      // The job started when its first generation formed; re-formations do not start it again.
      long started = generation == 0 ? g.atMillis() : startedAtMillis;
      return new Course(spec, g.generation(), g.worldSize(), g.stateSource(), kept, g.resumeStep(), checkpoints,
          minWorkers, maxWorkers, g.members(), next, newest(longer, HISTORY), createdAtMillis, started);
    }

    /**
     * An epoch is recorded, in its place: epochs can be recorded out of order when a coordinator
     * comes back after a journal outage, hears a rank's newest epoch at once, and the earlier ones
     * only when the ranks resend them (a test saw epochs 4, 1, 2, 3). Steps done never go back here.
     */
    Course withEpoch(JobEvent.EpochCompleted e) {
      List<EpochMetrics> more = new ArrayList<>(epochs);
      more.add(e.metrics());
      more.sort(java.util.Comparator.comparingInt(EpochMetrics::epoch));
      return new Course(spec, generation, worldSize, stateSource, List.copyOf(more), Math.max(stepsDone, e.stepsDone()),
          checkpoints, minWorkers, maxWorkers, members, nextMember, history, createdAtMillis, startedAtMillis);
    }

    Course withCheckpoint(CheckpointInfo checkpoint) {
      List<CheckpointInfo> more = new ArrayList<>(checkpoints);
      more.add(checkpoint);
      return new Course(spec, generation, worldSize, stateSource, epochs, stepsDone,
          newest(more, CHECKPOINTS_REMEMBERED), minWorkers, maxWorkers, members, nextMember, history, createdAtMillis,
          startedAtMillis);
    }

    Course scaled(JobEvent.JobScaled s) {
      return new Course(spec, generation, worldSize, stateSource, epochs, stepsDone, checkpoints, s.minWorkers(),
          s.maxWorkers(), members, nextMember, history, createdAtMillis, startedAtMillis);
    }

    /** The newest committed checkpoint, or null. */
    CheckpointInfo latestCheckpoint() {
      return checkpoints.isEmpty() ? null : checkpoints.get(checkpoints.size() - 1);
    }

    /** The newest {@code n} committed checkpoints, newest first: those the store keeps. */
    List<CheckpointInfo> newestCheckpoints(int n) {
      List<CheckpointInfo> newestFirst = new ArrayList<>(newest(checkpoints, n));
      java.util.Collections.reverse(newestFirst);
      return newestFirst;
    }

    JobStatus toStatus(String jobId, JobStatus.Phase phase, String health, double testAccuracy, String digest,
        String message, String coordinatorNode, long endedAtMillis) {
      return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, stateSource.toString(), latestCheckpoint(),
          health, testAccuracy, digest, message, worldSize, minWorkers, maxWorkers, history, coordinatorNode, List.of(),
          null, createdAtMillis, startedAtMillis, endedAtMillis);
    }

    private static <T> List<T> newest(List<T> all, int n) {
      return List.copyOf(all.subList(Math.max(0, all.size() - n), all.size()));
    }
  }
}
