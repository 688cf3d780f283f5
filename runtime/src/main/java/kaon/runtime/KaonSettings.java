package kaon.runtime;

import com.typesafe.config.Config;
import java.nio.file.Path;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.checkpoint.CheckpointSettings;
import kaon.actors.job.JobSettings;
import kaon.actors.worker.WorkerSettings;

/**
 * Everything a node reads from configuration, read once at start-up. Behaviors get these records
 * (or parts of them) and never look at the config themselves.
 *
 * @param cpuSlots CPU slots of this node when it has no GPU; 0 means one per core
 * @param threadsPerSlot libtorch intra-op threads of each slot's worker
 * @param worker how workers train and all-reduce
 * @param job how job coordinators recover
 * @param checkpoint where and how checkpoints are stored
 */
public record KaonSettings(
    int cpuSlots, int threadsPerSlot, WorkerSettings worker, JobSettings job, CheckpointSettings checkpoint) {

  /** Reads {@code kaon.node}, {@code kaon.worker}, {@code kaon.allreduce}, {@code kaon.job}, {@code kaon.checkpoint}. */
  public static KaonSettings fromConfig(Config config) {
    Config node = config.getConfig("kaon.node");
    Config worker = config.getConfig("kaon.worker");
    Config allReduce = config.getConfig("kaon.allreduce");
    long chunkBytes = allReduce.getBytes("chunk-bytes");
    if (chunkBytes < 4 || chunkBytes % 4 != 0 || chunkBytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "kaon.allreduce.chunk-bytes must be a positive multiple of 4 bytes, was " + chunkBytes);
    }
    AllReduceSettings ring = new AllReduceSettings(
        (int) (chunkBytes / Float.BYTES),
        allReduce.getDuration("first-round-timeout"),
        allReduce.getDuration("min-round-timeout"),
        allReduce.getDouble("timeout-factor"),
        AllReduceSettings.Transport.parse(allReduce.getString("transport")),
        allReduce.getBoolean("shared-memory"));
    String dataDir = worker.getString("data-dir");
    WorkerSettings workerSettings = new WorkerSettings(
        ring,
        worker.getDuration("progress-interval"),
        worker.getInt("eval-batch"),
        dataDir.isBlank() ? null : Path.of(dataDir),
        worker.getDouble("gradient-spike-factor"),
        modelDir(worker.getString("model-dir")),
        worker.getDuration("device-ask-timeout"),
        worker.getDuration("hold-device"),
        worker.getDuration("report-resend-interval"),
        worker.getBoolean("warm-spare-devices"),
        worker.getInt("training-nice"));
    int slots = node.getInt("cpu-slots");
    int threads = node.getInt("threads-per-slot");
    if (slots < 0) {
      throw new IllegalArgumentException("kaon.node.cpu-slots must not be negative, was " + slots);
    }
    if (threads <= 0) {
      throw new IllegalArgumentException("kaon.node.threads-per-slot must be positive, was " + threads);
    }
    JobSettings jobSettings = JobSettings.fromConfig(config.getConfig("kaon.job"), config.getString("pekko.persistence.journal.plugin"));
    Config ckpt = config.getConfig("kaon.checkpoint");
    long ckptChunk = ckpt.getBytes("chunk-bytes");
    CheckpointSettings checkpoint = new CheckpointSettings(
        ckpt.getString("keyspace"),
        ckpt.getBoolean("autocreate"),
        ckpt.getInt("replication-factor"),
        (int) Math.min(Integer.MAX_VALUE, ckptChunk),
        ckpt.getInt("write-parallelism"),
        ckpt.getInt("keep-last"),
        ckpt.getDuration("retry-min"),
        ckpt.getDuration("retry-max"));
    return new KaonSettings(slots, threads, workerSettings, jobSettings, checkpoint);
  }

  /**
   * {@code kaon.worker.model-dir}, or when it is empty Kaon's data directory for its own files:
   * {@code $XDG_DATA_HOME/kaon/models}, else {@code ~/.local/share/kaon/models} (where the local
   * scripts keep Cassandra's data and the nodes' logs too).
   */
  static Path modelDir(String configured) {
    if (!configured.isBlank()) {
      return Path.of(configured).toAbsolutePath();
    }
    String xdg = System.getenv("XDG_DATA_HOME");
    Path base = xdg == null || xdg.isBlank() ? Path.of(System.getProperty("user.home"), ".local", "share") : Path.of(xdg);
    return base.resolve("kaon").resolve("models");
  }
}
