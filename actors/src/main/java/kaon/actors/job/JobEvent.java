package kaon.actors.job;

import java.util.List;
import java.util.stream.IntStream;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;

/**
 * What a job's journal holds, serialized as protobuf by {@link JobEventSerializer} (one short
 * manifest per event; the classes may move, the manifests may not). {@link JobState} says what
 * each does to the job.
 */
public sealed interface JobEvent
    permits JobEvent.JobSubmitted, JobEvent.GenerationStarted, JobEvent.EpochCompleted, JobEvent.CheckpointCommitted,
        JobEvent.JobSucceeded, JobEvent.JobFailed, JobEvent.JobCancelled, JobEvent.JobScaled {

  /** Whether this event ends the job (nothing but late results follow it). */
  default boolean endsTheJob() {
    return this instanceof JobSucceeded || this instanceof JobFailed || this instanceof JobCancelled;
  }

  /**
   * {@code reason} cut to 4 KiB: reasons go into events, and a pathological one (a long stack of
   * causes) must not push an event over the journal's size limit.
   */
  static String shortened(String reason) {
    return reason.length() <= 4096 ? reason : reason.substring(0, 4093) + "...";
  }

  /** The job was accepted, at {@code atMillis} (epoch ms). */
  record JobSubmitted(JobSpec spec, long atMillis) implements JobEvent {}

  /**
   * A new membership: the workers {@code members} (their member ids, in rank order) resume at
   * {@code resumeStep} from {@code stateSource}, why, and when (epoch ms; 0 in events written
   * before it was recorded).
   */
  record GenerationStarted(long generation, int worldSize, long resumeStep, String reason, StateSource stateSource,
      List<Integer> members, long atMillis) implements JobEvent {

    public GenerationStarted {
      members = List.copyOf(members);
      if (members.size() != worldSize) {
        throw new IllegalArgumentException(members.size() + " members for world size " + worldSize);
      }
    }

    /** Members {@code 0..worldSize-1}: the first generation's, and every one before member ids. */
    public static List<Integer> ranks(int worldSize) {
      return IntStream.range(0, worldSize).boxed().toList();
    }
  }

  /** An epoch's metrics over all ranks. */
  record EpochCompleted(EpochMetrics metrics, long stepsDone) implements JobEvent {}

  /** A checkpoint is durable in the store and may be resumed from. */
  record CheckpointCommitted(CheckpointInfo checkpoint) implements JobEvent {}

  // The ends of a job say when, in epoch ms: 0 in events written before it was recorded.

  /** Every rank finished with identical parameters, at {@code atMillis}. */
  record JobSucceeded(double testAccuracy, String digest, long atMillis) implements JobEvent {}

  /** The job stopped for {@code reason} at {@code atMillis}. */
  record JobFailed(String reason, long atMillis) implements JobEvent {}

  /** The owner cancelled the job at {@code atMillis}. */
  record JobCancelled(long atMillis) implements JobEvent {}

  /** The owner changed the bounds of the world size. */
  record JobScaled(int minWorkers, int maxWorkers) implements JobEvent {}
}
