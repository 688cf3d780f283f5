package kaon.actors.job;

import kaon.protocol.KryoWireMessage;

/** What watchers of a job receive ({@link JobCoordinator.Watch}). */
public sealed interface JobUpdate extends KryoWireMessage {

  /** The job's status after a change of phase, generation, checkpoint or health. */
  record StatusChanged(JobStatus status) implements JobUpdate {}

  /** Training progress inside an epoch. */
  record Progress(JobProgress progress) implements JobUpdate {}

  /** An epoch finished. */
  record EpochFinished(EpochMetrics metrics) implements JobUpdate {}
}
