package kaon.actors.checkpoint;

import java.time.Duration;

/**
 * Where and how checkpoints are stored; read once from {@code kaon.checkpoint}.
 *
 * @param keyspace Cassandra keyspace of the checkpoint tables
 * @param autocreate create the keyspace and tables when missing (local and test use; production
 *     creates them from {@code deploy/cassandra/schema.cql})
 * @param replicationFactor replication of an auto-created keyspace
 * @param chunkBytes bytes per chunk row; well under Cassandra's mutation cap
 * @param writeParallelism chunk writes in flight per checkpoint
 * @param keepLast committed checkpoints kept per job; older ones are deleted
 * @param retryMin first delay before retrying a failed checkpoint write
 * @param retryMax longest delay between retries
 */
public record CheckpointSettings(
    String keyspace,
    boolean autocreate,
    int replicationFactor,
    int chunkBytes,
    int writeParallelism,
    int keepLast,
    Duration retryMin,
    Duration retryMax) {

  /** Cassandra refuses mutations over half a commit-log segment; 1 MiB stays far below. */
  public static final int MAX_CHUNK_BYTES = 1 << 20;

  /**
   * Most committed checkpoints a job may keep: a job's journal remembers the newest this many (a
   * constant of its format, so that the same journal always rebuilds the same job), and a job
   * can fall back only to a checkpoint its journal remembers.
   */
  public static final int MAX_KEEP_LAST = 32;

  public CheckpointSettings {
    if (!keyspace.matches("[a-z][a-z0-9_]{0,47}")) {
      throw new IllegalArgumentException("kaon.checkpoint.keyspace is not a valid keyspace name: " + keyspace);
    }
    if (chunkBytes <= 0 || chunkBytes > MAX_CHUNK_BYTES) {
      throw new IllegalArgumentException("kaon.checkpoint.chunk-bytes must be in 1..1 MiB, was " + chunkBytes);
    }
    if (writeParallelism <= 0 || keepLast <= 0 || replicationFactor <= 0) {
      throw new IllegalArgumentException("kaon.checkpoint write-parallelism, keep-last and replication-factor must be positive");
    }
    if (keepLast > MAX_KEEP_LAST) {
      throw new IllegalArgumentException("kaon.checkpoint.keep-last must be at most " + MAX_KEEP_LAST
          + " (what a job's journal remembers), was " + keepLast);
    }
  }
}
