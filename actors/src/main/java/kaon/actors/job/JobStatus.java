package kaon.actors.job;

import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import java.util.List;

/**
 * A job as its owner sees it.
 *
 * @param jobId the job
 * @param phase where the job is in its life
 * @param spec what was submitted; null only for {@link Phase#UNKNOWN}
 * @param generation current membership generation (0 before the first)
 * @param epochs finished epochs, in order
 * @param stepsDone optimizer steps completed by the last finished epoch
 * @param stateSource where the current generation's state came from: {@code init}, {@code
 *     checkpoint:<id>} or {@code memory:<worker>}
 * @param latestCheckpoint the newest committed checkpoint, or null
 * @param health empty when all is well, otherwise what is degraded (e.g. checkpoint writes
 *     failing and being retried) and since when
 * @param testAccuracy final test accuracy once {@link Phase#SUCCEEDED}, else NaN
 * @param digest once succeeded, the SHA-256 (hex) of the trained model file (DJL {@code .params}) the job
 *     delivers, stored under it; else empty
 * @param message why the job failed or was cancelled, else empty
 * @param worldSize ranks of the current generation
 * @param minWorkers fewest ranks the job may run with now
 * @param maxWorkers most ranks the job may run with now
 * @param generations the job's generations, oldest first (the newest 100): how it got here
 * @param coordinatorNode cluster address of the node whose coordinator answered, that is where the
 *     job's coordinator runs now; empty when no coordinator answered
 * @param ranks where the current generation's ranks run and how their chunks travel, in rank
 *     order, as far as they said (see {@link RankPlacement}); empty when not known
 * @param progress where the current generation is inside its epoch, as rank 0 last said (every
 *     {@code kaon.worker.progress-interval}); null before it said. Unlike {@code stepsDone}, which
 *     moves when an epoch is recorded, it is live; like {@code ranks} it is not persisted
 * @param createdAtMillis when the job was submitted, in epoch ms; 0 when not known
 * @param startedAtMillis when its first generation was formed, in epoch ms; 0 when not known
 * @param endedAtMillis when it succeeded, failed or was cancelled, in epoch ms; 0 while it runs,
 *     or when its journal did not record it
 */
public record JobStatus(
    String jobId,
    Phase phase,
    JobSpec spec,
    long generation,
    List<EpochMetrics> epochs,
    long stepsDone,
    String stateSource,
    CheckpointInfo latestCheckpoint,
    String health,
    double testAccuracy,
    String digest,
    String message,
    int worldSize,
    int minWorkers,
    int maxWorkers,
    List<GenerationInfo> generations,
    String coordinatorNode,
    List<RankPlacement> ranks,
    JobProgress progress,
    long createdAtMillis,
    long startedAtMillis,
    long endedAtMillis) implements kaon.protocol.KryoWireMessage {

  /** What is known of a job whose journal has not been read: nothing but its id. */
  public static JobStatus unknown(String jobId) {
    return new JobStatus(jobId, Phase.UNKNOWN, null, 0, List.of(), 0, "", null, "", Double.NaN, "", "", 0, 0, 0, List.of(), "",
        List.of(), null, 0, 0, 0);
  }

  /** The same status with another health line. */
  public JobStatus withHealth(String otherHealth) {
    return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, stateSource, latestCheckpoint, otherHealth,
        testAccuracy, digest, message, worldSize, minWorkers, maxWorkers, generations, coordinatorNode, ranks, progress,
        createdAtMillis, startedAtMillis, endedAtMillis);
  }

  /** The same status with the current generation's ranks placed. */
  public JobStatus withRanks(List<RankPlacement> placed) {
    return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, stateSource, latestCheckpoint, health,
        testAccuracy, digest, message, worldSize, minWorkers, maxWorkers, generations, coordinatorNode, List.copyOf(placed),
        progress, createdAtMillis, startedAtMillis, endedAtMillis);
  }

  /** The same status with the current generation's newest progress (null: none yet). */
  public JobStatus withProgress(JobProgress newest) {
    return new JobStatus(jobId, phase, spec, generation, epochs, stepsDone, stateSource, latestCheckpoint, health,
        testAccuracy, digest, message, worldSize, minWorkers, maxWorkers, generations, coordinatorNode, ranks, newest,
        createdAtMillis, startedAtMillis, endedAtMillis);
  }

  /** Phases of a job. The last three are terminal. */
  public enum Phase {
    UNKNOWN,
    STARTING,
    RUNNING,
    SUCCEEDED,
    FAILED,
    CANCELLED;

    /** True once the job can no longer change. */
    public boolean isTerminal() {
      return this == SUCCEEDED || this == FAILED || this == CANCELLED;
    }
  }
}
