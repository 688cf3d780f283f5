package kaon.runtime.bench;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CyclicBarrier;
import kaon.actors.data.LabeledImages;
import kaon.actors.training.LocalGradientCollector;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.Optimizer;
import kaon.actors.training.Optimizers;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TrainingTask;

/**
 * Compute-only throughput of 1 and of 2 workers in one JVM: each worker runs forward, backward
 * and its optimizer on its own thread and replica, with no gradient exchange. DJL's own gradient
 * collector allows one per JVM; with it the second worker would wait for the first. The ratio
 * 2-worker/1-worker shows how much of a second core the per-thread collector really gets
 * (notes/djl-parallel.md measured 1.8-1.9x on this machine when it was quiet).
 *
 * <p>Usage: {@code bench/worker-parallelism [task] [steps] [rounds]}. Rounds alternate 1 and 2
 * workers so both see the same machine; the median of each is printed.
 */
public final class WorkerParallelism {

  private WorkerParallelism() {}

  public static void main(String[] args) throws Exception {
    String taskName = args.length > 0 ? args[0] : "fashion-mnist-mlp";
    int steps = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
    TaskCatalog catalog = TaskCatalog.load(WorkerParallelism.class.getClassLoader());
    TrainingTask task = catalog.find(taskName);
    LabeledImages train = catalog.data(task, null).train();
    // Warm-up: JIT and the first GEMMs, so round 1 is not penalized.
    measure(task, train, 1, Math.min(steps, 300));
    Samples one = new Samples();
    Samples two = new Samples();
    for (int r = 0; r < rounds; r++) {
      one.add(measure(task, train, 1, steps));
      two.add(measure(task, train, 2, steps));
    }
    double m1 = one.median();
    double m2 = two.median();
    System.out.printf(Locale.ROOT, "worker-parallelism: %s, batch 64 per worker, %d steps per worker, median of %d%n",
        taskName, steps, rounds);
    System.out.printf(Locale.ROOT, "1 worker   %8.0f steps/s  (rounds %s)%n", m1, one);
    System.out.printf(Locale.ROOT, "2 workers  %8.0f steps/s  (rounds %s)%n", m2, two);
    System.out.printf(Locale.ROOT, "speed-up   %8.2fx  (notes/djl-parallel.md: 1.8-1.9x quiet; 1.5x with DJL's locked collector)%n", m2 / m1);
  }

  /** Steps per second summed over {@code workers} threads training at once. */
  private static double measure(TrainingTask task, LabeledImages train, int workers, int steps) throws Exception {
    CyclicBarrier start = new CyclicBarrier(workers + 1);
    CyclicBarrier end = new CyclicBarrier(workers + 1);
    List<Thread> threads = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      int worker = w;
      Thread t = new Thread(() -> {
        LocalGradientCollector.prepareThread(1);
        try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 42)) {
          Optimizer sgd = Optimizers.create(OptimizerSpec.sgd(0.1f, 0f), replica.manager());
          float[] flat = new float[replica.size()];
          int[] batch = new int[64];
          start.await();
          for (int s = 0; s < steps; s++) {
            int base = ((s * 64) + worker * 30_000) % (train.count() - 64);
            for (int i = 0; i < batch.length; i++) {
              batch[i] = base + i;
            }
            replica.computeGradients(train, batch, flat);
            replica.applyGradients(flat, 1f / 64, sgd);
          }
          end.await();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }, "bench-worker-" + w);
      threads.add(t);
      t.start();
    }
    start.await();
    long t0 = System.nanoTime();
    end.await();
    double seconds = (System.nanoTime() - t0) / 1e9;
    for (Thread t : threads) {
      t.join();
    }
    return workers * steps / seconds;
  }


}
