package kaon.actors.checkpoint;

/**
 * The checkpoint and model tables, also written out in {@code deploy/cassandra/schema.cql} for production,
 * where keyspaces are created by an operator with the replication they need.
 */
public final class CheckpointSchema {

  private CheckpointSchema() {}

  /**
   * Every table of the checkpoint keyspace {@code keyspace}, in creation order, then compression
   * turned off on chunk tables an older version made (harmless when it already is).
   */
  public static java.util.List<String> tables(String keyspace) {
    return java.util.List.of(checkpoints(keyspace), chunks(keyspace), models(keyspace), modelChunks(keyspace),
        "ALTER TABLE " + keyspace + ".checkpoint_chunks WITH " + UNCOMPRESSED,
        "ALTER TABLE " + keyspace + ".model_chunks WITH " + UNCOMPRESSED);
  }

  /** One row per committed checkpoint, newest first within a job. */
  static String checkpoints(String keyspace) {
    return "CREATE TABLE IF NOT EXISTS " + keyspace + ".checkpoints ("
        + "job_id text, step bigint, checkpoint_id text, epoch int, bytes bigint, chunks int, chunk_bytes int, "
        + "sha256 text, created_at timestamp, PRIMARY KEY (job_id, step, checkpoint_id)) "
        + "WITH CLUSTERING ORDER BY (step DESC, checkpoint_id ASC)";
  }

  /**
   * Chunk tables are not compressed: parameters and optimizer moments are float bits that LZ4 does
   * not shrink, and compressing them cost Cassandra about a third of its CPU per checkpoint (on
   * every flush and compaction), taken from training on a shared machine (bench/checkpoint).
   */
  static final String UNCOMPRESSED = "compression = {'enabled': 'false'}";

  /** One partition per chunk, so that no partition grows with the model. */
  static String chunks(String keyspace) {
    return "CREATE TABLE IF NOT EXISTS " + keyspace + ".checkpoint_chunks ("
        + "job_id text, checkpoint_id text, chunk int, data blob, PRIMARY KEY ((job_id, checkpoint_id, chunk))) WITH "
        + UNCOMPRESSED;
  }

  /** One row per stored model of a job, keyed by the model file's sha256; written last. */
  static String models(String keyspace) {
    return "CREATE TABLE IF NOT EXISTS " + keyspace + ".models ("
        + "job_id text, sha256 text, bytes bigint, chunks int, chunk_bytes int, created_at timestamp, "
        + "PRIMARY KEY (job_id, sha256))";
  }

  /** The model's bytes, one partition per chunk as for checkpoints. */
  static String modelChunks(String keyspace) {
    return "CREATE TABLE IF NOT EXISTS " + keyspace + ".model_chunks ("
        + "job_id text, sha256 text, chunk int, data blob, PRIMARY KEY ((job_id, sha256, chunk))) WITH " + UNCOMPRESSED;
  }
}
