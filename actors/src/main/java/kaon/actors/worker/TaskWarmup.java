package kaon.actors.worker;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TaskData;
import kaon.actors.training.TrainingTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Readies this node to train a task before a rank of it is placed here: loads the task's data into
 * the node's {@link TaskCatalog} (where every worker of the node finds it) and builds and steps one
 * throwaway replica, so that DJL's and the engine's first-use costs are paid now. A rank that
 * replaces a lost one usually lands on a node with a free device that has never trained the job's
 * task, and there those costs were most of the recovery: the chaos suite's kill of a rank's node
 * took 8.7 s to train again, of which 3.3 s went to preparing the new rank on a node that had sat
 * idle (loading Fashion-MNIST alone takes about a second, the first replica another).
 *
 * <p>One thread, at most once per task: a node warms a task the first time any job's coordinator
 * says it trains it (see {@link NodeAgent.WarmTask}), and only while the node has a free device.
 * The cost is the task's data in memory on a node that may never train it (Fashion-MNIST: 55 MB
 * of bytes), which is why it can be
 * turned off ({@code kaon.worker.warm-spare-devices}). The replica is built on the CPU: what it
 * warms (the data, class loading and JIT of the model's code, the engine's first operators) does
 * not depend on the device. A failure is only logged: the rank placed here later meets the same
 * cause and reports it to its job.
 */
public final class TaskWarmup {

  private static final Logger log = LoggerFactory.getLogger(TaskWarmup.class);
  /** Examples in the warm-up's one forward and backward pass. */
  private static final int EXAMPLES = 8;

  private final TaskCatalog catalog;
  private final Path dataDir;
  private final Map<String, CompletableFuture<Void>> asked = new ConcurrentHashMap<>();
  private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "kaon-task-warmup");
    t.setDaemon(true);
    return t;
  });

  /** Warms tasks from {@code catalog}, with their data from {@code dataDir} (null: each task's default). */
  public TaskWarmup(TaskCatalog catalog, Path dataDir) {
    this.catalog = catalog;
    this.dataDir = dataDir;
  }

  /**
   * Starts warming {@code task} (a name or class, as a job names it) unless it was asked before;
   * returns at once, with what completes when the task is warm (exceptionally: why it is not).
   */
  public CompletableFuture<Void> warm(String task) {
    return asked.computeIfAbsent(task, t -> CompletableFuture.runAsync(() -> run(t), thread));
  }

  /** The warm-up of {@code task} asked for before, if any. */
  public Optional<CompletableFuture<Void>> asked(String task) {
    return Optional.ofNullable(asked.get(task));
  }

  private void run(String name) {
    try {
      // No thread count of its own (LocalGradientCollector.prepareThread): PyTorch keeps the last
      // one set for the whole process, and a thread's first operation adopts it, so a warm-up
      // that set 1 gave the ranks starting beside it one thread instead of their slot's (a chaos
      // run's job trained several times slower). Results depend on the count, too.
      long start = System.nanoTime();
      TrainingTask task = catalog.find(name);
      TaskData data = catalog.data(task, dataDir);
      long loaded = System.nanoTime();
      try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 0)) {
        int examples = Math.min(EXAMPLES, data.train().count());
        int[] indices = new int[examples];
        for (int i = 0; i < examples; i++) {
          indices[i] = i;
        }
        replica.computeGradients(data.train(), indices, new float[replica.size()]);
      }
      long done = System.nanoTime();
      log.info("task {} warmed for a rank this node may get: data {} ms, first replica and step {} ms", name,
          (loaded - start) / 1_000_000, (done - loaded) / 1_000_000);
    } catch (RuntimeException | LinkageError e) {
      log.info("task {} not warmed (a rank placed here will report why): {}", name, e.toString());
      throw new java.util.concurrent.CompletionException(e);
    }
  }
}
