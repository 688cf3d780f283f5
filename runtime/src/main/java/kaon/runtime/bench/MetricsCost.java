package kaon.runtime.bench;

import com.typesafe.config.ConfigFactory;
import java.util.Locale;
import java.util.concurrent.CyclicBarrier;
import kaon.actors.metrics.KaonMetrics;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * What a rank's step metrics cost per step, measured directly: {@code ranks} threads record steps
 * into one job's series at once, as the ranks of a job on one node do (they share its data points,
 * so they contend as in training), and the wall time per step is printed. bench/metrics-overhead
 * sets it against the step time of a real run: end to end, the runs of this 2-core machine vary by
 * ±15% from one to the next, far more than the metrics can cost, so the A/B figure alone cannot
 * show a 1% goal.
 *
 * <p>Usage: {@code MetricsCost [ranks] [steps]}; prints {@code ns-per-step N}.
 */
public final class MetricsCost {

  private MetricsCost() {}

  public static void main(String[] args) throws Exception {
    int ranks = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int steps = args.length > 1 ? Integer.parseInt(args[1]) : 2_000_000;
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "metrics-cost",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try {
      KaonMetrics.Steps metrics = KaonMetrics.get(system).steps("bench-job", "shared-memory");
      run(metrics, ranks, steps / 4); // JIT warm-up
      double best = Double.MAX_VALUE;
      for (int round = 0; round < 3; round++) {
        best = Math.min(best, run(metrics, ranks, steps));
      }
      System.out.printf(Locale.ROOT, "ns-per-step %.1f%n", best);
    } finally {
      system.terminate();
    }
  }

  /** Wall nanoseconds per step of {@code ranks} threads recording {@code steps} steps each at once. */
  private static double run(KaonMetrics.Steps metrics, int ranks, int steps) throws Exception {
    CyclicBarrier start = new CyclicBarrier(ranks + 1);
    Thread[] threads = new Thread[ranks];
    for (int r = 0; r < ranks; r++) {
      threads[r] = new Thread(() -> {
        try {
          start.await();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
        for (int i = 0; i < steps; i++) {
          // Figures of the MLP's step on this machine: ~1 ms compute, ~0.5 ms exchange, 0.1 ms optimizer.
          metrics.step(1_000_000 + (i & 1023), 500_000 + (i & 511), 100_000, 64, 437_000);
        }
      });
      threads[r].start();
    }
    start.await();
    long began = System.nanoTime();
    for (Thread t : threads) {
      t.join();
    }
    return (double) (System.nanoTime() - began) / steps;
  }
}
