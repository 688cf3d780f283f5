package kaon.actors.job;

import kaon.protocol.KryoWireMessage;

/**
 * The coordinator's answer to an owner command ({@link JobCoordinator.Submit}, {@link
 * JobCoordinator.Cancel}, {@link JobCoordinator.Scale}): the job's status, or a refusal whose
 * {@link Refusal} says which case it is. The gRPC layer chooses its status code from the kind,
 * never from the words, which are for people.
 */
public sealed interface OwnerReply extends KryoWireMessage {

  /** The command was carried out; the job's status after it. */
  record Accepted(JobStatus status) implements OwnerReply {}

  /** The command was refused for {@code message}. */
  record Refused(Refusal refusal, String message) implements OwnerReply {}

  /** Why a command was refused. */
  enum Refusal {
    /** No job has this id. */
    NOT_FOUND,
    /** The job already ended; it can no longer change. */
    ENDED,
    /** Another job already has this id. */
    CONFLICT,
    /** The command's own values are wrong; {@code message} names the field. */
    INVALID_ARGUMENT,
    /** Not now (the journal is unreachable, the lease is elsewhere, the entity is leaving): retry. */
    UNAVAILABLE
  }
}
