package kaon.runtime.chaos;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;

/**
 * One thing a chaos run did or saw, with when it happened (epoch milliseconds). A run's history
 * is a list of these, one JSON object per line of {@code history.jsonl}; the checker reads only
 * that list, so a history written by hand is checked exactly as a recorded one.
 *
 * <p>What the recorder sees comes from public surfaces: the job API (generations, epochs,
 * checkpoints, ranks, health), the checkpoint table (to hash what was stored) and the job journal
 * (who wrote it, in what order). Sampled values (steps, placements) may lag the truth by the
 * sampling interval; the checker's rules allow for that and never for more.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
    @JsonSubTypes.Type(value = Observation.JobSubmitted.class, name = "job-submitted"),
    @JsonSubTypes.Type(value = Observation.FaultStarted.class, name = "fault-started"),
    @JsonSubTypes.Type(value = Observation.FaultEnded.class, name = "fault-ended"),
    @JsonSubTypes.Type(value = Observation.FaultStruck.class, name = "fault-struck"),
    @JsonSubTypes.Type(value = Observation.GenerationFormed.class, name = "generation"),
    @JsonSubTypes.Type(value = Observation.StepsSeen.class, name = "steps"),
    @JsonSubTypes.Type(value = Observation.CheckpointCommitted.class, name = "checkpoint"),
    @JsonSubTypes.Type(value = Observation.CheckpointVerified.class, name = "checkpoint-verified"),
    @JsonSubTypes.Type(value = Observation.EpochReported.class, name = "epoch"),
    @JsonSubTypes.Type(value = Observation.RanksPlaced.class, name = "ranks"),
    @JsonSubTypes.Type(value = Observation.JournalRead.class, name = "journal"),
    @JsonSubTypes.Type(value = Observation.ClusterViews.class, name = "cluster"),
    @JsonSubTypes.Type(value = Observation.JobEnded.class, name = "job-ended"),
    @JsonSubTypes.Type(value = Observation.Baseline.class, name = "baseline")
})
public sealed interface Observation {

  /** When it happened or was seen, in epoch milliseconds. */
  long atMillis();

  /** An observation about one job (the others are about the run: faults, the cluster). */
  sealed interface OfJob extends Observation {
    String jobId();
  }

  /**
   * A job the run submitted, with its spec as the server completed it. {@code maxSteps} 0 means the
   * job runs its epochs in full; {@code expectFailure} is the scenario's: the job is meant to fail
   * (with a message that mentions {@code failureMentions}).
   */
  record JobSubmitted(long atMillis, String jobId, int epochs, long maxSteps, int globalBatch, int minWorkers,
      int maxWorkers, boolean expectFailure, String failureMentions) implements OfJob {}

  /** A fault the tool applied: its number in the run, its kind ("kill", "hang", ...), and what it hit. */
  record FaultStarted(long atMillis, int fault, String kind, String target, String detail) implements Observation {}

  /** A fault undone (a hung node continued, Cassandra back, a partition healed); kills have none. */
  record FaultEnded(long atMillis, int fault) implements Observation {}

  /**
   * How often a fault inside the runtime struck while it was armed (chunks dropped or damaged, a
   * gradient poisoned), as the nodes' chaos services counted; recorded when it was disarmed.
   */
  record FaultStruck(long atMillis, int fault, long strikes) implements Observation {}

  /** A generation of a job, as its history in the API tells it ({@code atMillis}: when it formed). */
  record GenerationFormed(long atMillis, String jobId, long generation, int worldSize, long resumeStep,
      String stateSource, String reason, List<Integer> workers) implements OfJob {}

  /**
   * A sample of a job's progress: its generation, the step it has reached, the steps of one epoch
   * (0 when not known yet), its world size, the latest mean loss (null when none was reported) and
   * its health (empty when healthy).
   */
  record StepsSeen(long atMillis, String jobId, long generation, long step, int stepsPerEpoch, int worldSize,
      Double meanLoss, String health) implements OfJob {}

  /** A checkpoint the job committed (its row in the checkpoint table, with the SHA-256 it recorded). */
  record CheckpointCommitted(long atMillis, String jobId, String checkpointId, long step, String sha256)
      implements OfJob {}

  /**
   * The tool read a checkpoint that a generation loaded back from the store and hashed it: {@code
   * readSha256} is what its stored bytes hash to, empty when they could no longer be read.
   */
  record CheckpointVerified(long atMillis, String jobId, String checkpointId, String committedSha256,
      String readSha256) implements OfJob {}

  /** An epoch's result as the job reported it. */
  record EpochReported(long atMillis, String jobId, int epoch, long stepsDone, long samples, boolean eachSampleOnce,
      int worldSize, double meanLoss, double testAccuracy) implements OfJob {}

  /** Where a job's ranks ran, as far as they had said (one sample). */
  record RanksPlaced(long atMillis, String jobId, long generation, List<Rank> ranks) implements OfJob {

    /** One rank: its worker's member id, its node's address and its device. */
    public record Rank(int rank, int worker, String node, String device) {}
  }

  /**
   * A job's journal, read after the run: its writers in sequence-number order, each run of
   * consecutive events by one writer, and the sequence numbers missing between 1 and the last.
   */
  record JournalRead(long atMillis, String jobId, List<WriterRun> runs, List<Long> missing) implements OfJob {

    /** Events {@code first..last} were all written by {@code writer}. */
    public record WriterRun(String writer, long first, long last) {}
  }

  /** What each node listed as the cluster's Up members (one list per node asked), at the end. */
  record ClusterViews(long atMillis, int expectedNodes, List<List<String>> views) implements Observation {}

  /** A job ended: its phase ("SUCCEEDED", "FAILED", "CANCELLED"), message, steps, accuracy and model digest. */
  record JobEnded(long atMillis, String jobId, String phase, String message, long stepsDone, double testAccuracy,
      String digest) implements OfJob {}

  /** The same job run without faults: its accuracy, its model's digest and its (fixed) world size. */
  record Baseline(long atMillis, String jobId, double testAccuracy, String digest, int worldSize)
      implements OfJob {}
}
