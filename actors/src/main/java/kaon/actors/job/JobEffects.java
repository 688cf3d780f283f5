package kaon.actors.job;

import java.util.concurrent.CompletionStage;

/**
 * What a job's coordinator does outside itself besides its workers: leave memory, confirm the
 * job's lease, probe its journal, and say where it runs. In a cluster these are sharding's
 * passivation, the {@link kaon.actors.lease.CassandraLease} and the journal's Cassandra session
 * ({@link JobEntity}); a test of the coordinator alone gives its own.
 */
interface JobEffects {

  /**
   * Asks to leave memory (and sharding's set of remembered entities), unless the node shuts down
   * or the coordinator does not run under sharding; whether it asked.
   */
  boolean passivate();

  /**
   * Renews the job's lease, so that the write that follows happens while nobody else can hold it;
   * fails with {@link LeaseLostException} if another coordinator has it.
   */
  CompletionStage<?> confirmLease();

  /** Whether the lease is unconfirmed now (owner commands that would write are refused meanwhile). */
  boolean leaseUnconfirmed();

  /** Completes once a trivial query went through the journal's own session. */
  CompletionStage<?> pingJournal();

  /**
   * Whether the journal still holds this job's event {@code sequenceNr} (true for 0, before any).
   * Cassandra acknowledges a write before its commit log reaches the disk, and a node killed
   * meanwhile can come back without it: a coordinator that goes on writing after it would leave a
   * gap that no recovery gets past.
   */
  CompletionStage<Boolean> eventDurable(long sequenceNr);

  /** The cluster address of the node the coordinator runs on. */
  String nodeAddress();

  /** Another coordinator holds the job's lease. */
  final class LeaseLostException extends RuntimeException {
    LeaseLostException(String message) {
      super(message, null, false, false);
    }
  }

  /** The journal lost an event this coordinator wrote: it must recover from what the journal holds. */
  final class LostEventException extends RuntimeException {
    LostEventException(String message) {
      super(message, null, false, false);
    }
  }
}
