package kaon.runtime.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
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
    // What a step costs whatever its size: a second worker halves each one's batch, and only the
    // part of a step that grows with the batch is halved with it.
    Samples[] bySize = {new Samples(), new Samples(), new Samples()};
    int[] sizes = {32, 64, 128};
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < sizes.length; i++) {
        bySize[i].add(measure(task, train, 1, steps, sizes[i]));
      }
    }
    double[] micros = new double[sizes.length];
    for (int i = 0; i < sizes.length; i++) {
      micros[i] = 1e6 / bySize[i].median();
      System.out.printf(Locale.ROOT, "1 worker, batch %3d  %7.0f us per step  (rounds %s steps/s)%n", sizes[i], micros[i], bySize[i]);
    }
    double perExample = (micros[2] - micros[0]) / (sizes[2] - sizes[0]);
    double fixed = micros[0] - perExample * sizes[0];
    System.out.printf(Locale.ROOT, "a step = %.0f us + %.2f us per example: at batch 128 the fixed part is %.0f%%, so two"
        + " workers of 64 each can at best be %.2fx one worker of 128%n", fixed, perExample,
        100 * fixed / micros[2], micros[2] / (fixed + perExample * 64));
    // The ceiling for any of that: what a second thread adds to plain matrix products, the bulk
    // of a step's arithmetic. Two vCPUs that are one physical core's hyper-threads add little.
    Samples gemmOne = new Samples();
    Samples gemmTwo = new Samples();
    gemm(1, 2_000);
    for (int r = 0; r < rounds; r++) {
      gemmOne.add(gemm(1, 20_000));
      gemmTwo.add(gemm(2, 20_000));
    }
    System.out.printf(Locale.ROOT, "gemm 128x784 by 784x128 (libtorch, 1 thread each), GFLOP/s summed over threads%n");
    System.out.printf(Locale.ROOT, "1 thread   %8.1f  (rounds %s)%n", gemmOne.median(), gemmOne);
    System.out.printf(Locale.ROOT, "2 threads  %8.1f  (rounds %s)%n", gemmTwo.median(), gemmTwo);
    System.out.printf(Locale.ROOT, "speed-up   %8.2fx  (what this machine's second core gives the arithmetic)%n",
        gemmTwo.median() / gemmOne.median());
  }

  /** GFLOP/s of {@code threads} threads each multiplying a 128x784 by a 784x128 matrix at once. */
  private static double gemm(int threads, int products) throws Exception {
    double seconds = timed(threads, "bench-gemm", (index, start) -> {
      try (NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
        NDArray a = manager.randomUniform(0f, 1f, new Shape(128, 784));
        NDArray b = manager.randomUniform(0f, 1f, new Shape(784, 128));
        start.await();
        for (int i = 0; i < products; i++) {
          a.matMul(b).close();
        }
      }
    });
    return threads * (double) products * 2 * 128 * 784 * 128 / seconds / 1e9;
  }

  /** Steps per second summed over {@code workers} threads training at once. */
  private static double measure(TrainingTask task, LabeledImages train, int workers, int steps) throws Exception {
    return measure(task, train, workers, steps, 64);
  }

  /** The same with {@code batch} examples per worker and step. */
  private static double measure(TrainingTask task, LabeledImages train, int workers, int steps, int batchSize)
      throws Exception {
    double seconds = timed(workers, "bench-worker", (worker, start) -> {
      try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 42)) {
        Optimizer sgd = Optimizers.create(OptimizerSpec.sgd(0.1f, 0f), replica.manager());
        float[] flat = new float[replica.size()];
        int[] batch = new int[batchSize];
        start.await();
        for (int s = 0; s < steps; s++) {
          int base = ((s * batchSize) + worker * 30_000) % (train.count() - batchSize);
          for (int i = 0; i < batch.length; i++) {
            batch[i] = base + i;
          }
          replica.computeGradients(train, batch, flat);
          replica.applyGradients(flat, 1f / batchSize, sgd);
        }
      }
    });
    return workers * steps / seconds;
  }

  /** What one of the threads {@link #timed} starts runs: its set-up, {@code start.await()}, its loop. */
  @FunctionalInterface
  private interface Body {
    void run(int index, CyclicBarrier start) throws Exception;
  }

  /**
   * Runs {@code body} on {@code threads} threads of one intra-op thread each, and returns the
   * seconds from the moment all have set up to the moment all are done.
   */
  private static double timed(int threads, String name, Body body) throws Exception {
    CyclicBarrier start = new CyclicBarrier(threads + 1);
    CyclicBarrier end = new CyclicBarrier(threads + 1);
    List<Thread> running = new ArrayList<>();
    for (int w = 0; w < threads; w++) {
      int index = w;
      Thread t = new Thread(() -> {
        LocalGradientCollector.prepareThread(1);
        try {
          body.run(index, start);
          end.await();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }, name + "-" + w);
      running.add(t);
      t.start();
    }
    start.await();
    long t0 = System.nanoTime();
    end.await();
    double seconds = (System.nanoTime() - t0) / 1e9;
    for (Thread t : running) {
      t.join();
    }
    return seconds;
  }


}
