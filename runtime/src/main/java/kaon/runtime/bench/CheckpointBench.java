package kaon.runtime.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.protocol.NamedTensor;
import kaon.runtime.CassandraConnection;
import kaon.runtime.KaonSettings;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Checkpoint write and read throughput against the configured Cassandra (the embedded node by
 * default): checkpoints of 10 MB and 100 MB of parameters, each written and read back {@code
 * reps} times; the median is printed. Write time runs from the call until the metadata row is
 * durable (encoding, hashing and every chunk included); read time includes the checksum check.
 *
 * <p>Usage: {@code bench/checkpoint [reps]}.
 */
public final class CheckpointBench {

  private CheckpointBench() {}

  public static void main(String[] args) throws Exception {
    int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
    Config config = CassandraConnection.prepare(ConfigFactory.load(), System.out::println);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "checkpoint-bench", config);
    try {
      CheckpointStore store = CheckpointStore.create(system, KaonSettings.fromConfig(config).checkpoint());
      System.out.printf(Locale.ROOT, "%-8s %14s %14s%n", "size", "write MB/s", "read MB/s");
      for (int megabytes : new int[] {10, 100}) {
        String job = "bench-" + System.nanoTime();
        CheckpointData data = checkpoint(job, megabytes);
        Samples writes = new Samples();
        Samples reads = new Samples();
        // One unmeasured round warms the JIT and the connection pool.
        CheckpointInfo last = store.write(data).toCompletableFuture().get(10, TimeUnit.MINUTES);
        for (int r = 0; r < reps; r++) {
          long t0 = System.nanoTime();
          last = store.write(data).toCompletableFuture().get(10, TimeUnit.MINUTES);
          writes.add(last.bytes() / 1e6 / ((System.nanoTime() - t0) / 1e9));
          long t1 = System.nanoTime();
          store.load(job, last.id()).toCompletableFuture().get(10, TimeUnit.MINUTES);
          reads.add(last.bytes() / 1e6 / ((System.nanoTime() - t1) / 1e9));
        }
        store.deleteOlderThan(job, Long.MAX_VALUE, java.util.Set.of()).toCompletableFuture().get(10, TimeUnit.MINUTES);
        System.out.printf(Locale.ROOT, "%-8s %14.1f %14.1f   (writes %s; reads %s)%n",
            megabytes + " MB", writes.median(), reads.median(), writes, reads);
      }
      System.out.println("goal: >= 50 MB/s written");
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  private static CheckpointData checkpoint(String job, int megabytes) {
    int floats = megabytes * 1_000_000 / Float.BYTES;
    float[] values = new float[floats];
    SplittableRandom random = new SplittableRandom(megabytes);
    for (int i = 0; i < floats; i++) {
      // Random bits, as trained parameters look: nothing compresses on the way.
      values[i] = (float) random.nextGaussian();
    }
    return new CheckpointData(job, 1000, 2, 64, 42, 2,
        List.of(new NamedTensor("weights", new long[] {floats}, values)), List.of(), 0, 0, kaon.actors.data.SampleLedger.EMPTY);
  }


}
