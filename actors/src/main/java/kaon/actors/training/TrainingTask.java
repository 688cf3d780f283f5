package kaon.actors.training;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import java.nio.file.Path;

/**
 * What Kaon trains: a model, the data it learns from and the recipe defaults. This is the plug-in
 * point for users; the built-in Fashion-MNIST tasks implement it the same way.
 *
 * <p>Tasks are found with {@link java.util.ServiceLoader} (list the class in
 * {@code META-INF/services/kaon.actors.training.TrainingTask}) or by fully-qualified class name
 * from any jar on the classpath; either way the class needs a public no-argument constructor.
 * Every node of a cluster must be able to load the same task: each worker builds its own replica.
 *
 * <p>A task is stateless: {@link #buildModel()} returns a new, uninitialized block every time,
 * since every worker owns its replica. Parameters are initialized by Kaon from the job seed, so
 * that all replicas start identical without any coordination.
 */
public interface TrainingTask {

  /** The name jobs refer to, e.g. {@code fashion-mnist-mlp}. Lower case, no spaces. */
  String name();

  /** One line for {@code kaon tasks} and error messages. */
  String description();

  /** A new, uninitialized model. Its parameter names must not depend on the JVM. */
  Block buildModel();

  /** The model's input shape for a batch of {@code batchSize} examples. */
  Shape inputShape(int batchSize);

  /**
   * Loads the examples. Called once per node and shared read-only by its workers.
   *
   * @param dataDir where the task's files are; {@code null} means the task's default location
   * @throws kaon.actors.data.DatasetUnavailableException with a one-line, user-facing message when
   *     the files are missing or damaged
   */
  TaskData loadData(Path dataDir);

  /** The recipe a job gets when its spec does not say otherwise. */
  TaskDefaults defaults();
}
