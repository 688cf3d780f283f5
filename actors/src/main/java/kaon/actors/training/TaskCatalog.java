package kaon.actors.training;

import java.lang.reflect.InvocationTargetException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The training tasks this node can run, and their data, loaded once per node and shared read-only
 * by its workers (a second worker must not pay for, or double the memory of, a second copy).
 *
 * <p>A task is named either by its {@link TrainingTask#name()}, for tasks registered with {@link
 * ServiceLoader}, or by its fully-qualified class name, for any task class on the classpath.
 */
public final class TaskCatalog {

  private final Map<String, TrainingTask> byName;
  private final ClassLoader classLoader;
  private final Map<String, TaskData> data = new ConcurrentHashMap<>();

  private TaskCatalog(Map<String, TrainingTask> byName, ClassLoader classLoader) {
    this.byName = byName;
    this.classLoader = classLoader;
  }

  /**
   * The tasks registered with {@link ServiceLoader} on {@code classLoader}.
   *
   * @throws UnknownTaskException naming the provider when a registered task cannot be loaded
   *     (a user's jar built for a newer Java, or missing a class it needs)
   */
  public static TaskCatalog load(ClassLoader classLoader) {
    Map<String, TrainingTask> tasks = new TreeMap<>();
    for (TrainingTask task : loadable(ServiceLoader.load(TrainingTask.class, classLoader))) {
      TrainingTask previous = tasks.putIfAbsent(task.name(), task);
      if (previous != null && previous.getClass() != task.getClass()) {
        throw new IllegalStateException(
            "two training tasks are named " + task.name() + ": "
                + previous.getClass().getName() + " and " + task.getClass().getName());
      }
    }
    return new TaskCatalog(Collections.unmodifiableMap(tasks), classLoader);
  }

  /**
   * The providers, with a jar that cannot be loaded turned into one user-facing message: task jars
   * come from users (tasks/, KAON_TASKS_DIR), and ServiceLoader reports them as errors that would
   * otherwise end the node with a stack trace.
   */
  private static List<TrainingTask> loadable(ServiceLoader<TrainingTask> providers) {
    List<TrainingTask> tasks = new ArrayList<>();
    try {
      providers.forEach(tasks::add);
    } catch (java.util.ServiceConfigurationError | LinkageError e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new UnknownTaskException("a training task on the classpath cannot be loaded (a jar in tasks/ or KAON_TASKS_DIR?): "
          + e.getMessage() + (cause != e ? " (" + cause + ")" : ""));
    }
    return tasks;
  }

  /** The registered tasks, by name. */
  public List<TrainingTask> registered() {
    return new ArrayList<>(byName.values());
  }

  /**
   * The task called {@code nameOrClass}.
   *
   * @throws UnknownTaskException naming the registered tasks when there is no such task
   */
  public TrainingTask find(String nameOrClass) {
    TrainingTask task = byName.get(nameOrClass);
    if (task != null) {
      return task;
    }
    if (nameOrClass.contains(".")) {
      return instantiate(nameOrClass);
    }
    throw new UnknownTaskException(
        "unknown task '" + nameOrClass + "'; known tasks: " + String.join(", ", byName.keySet())
            + " (or the class name of a TrainingTask on the classpath)");
  }

  /**
   * How a job names {@code task} so that every node finds it again: its name when that name is
   * registered for its class, otherwise its class name. A task class that is on the classpath
   * but not registered has a name no catalog can look up.
   */
  public String reference(TrainingTask task) {
    TrainingTask registered = byName.get(task.name());
    return registered != null && registered.getClass() == task.getClass() ? task.name() : task.getClass().getName();
  }

  /** The task's data from {@code dataDir} (null: the task's default), loaded on first use. */
  public TaskData data(TrainingTask task, Path dataDir) {
    String key = task.getClass().getName() + '@' + dataDir;
    return data.computeIfAbsent(key, k -> task.loadData(dataDir));
  }

  /** Whether the data of {@code task} from {@code dataDir} are loaded already. */
  public boolean hasData(TrainingTask task, Path dataDir) {
    return data.containsKey(task.getClass().getName() + '@' + dataDir);
  }

  private TrainingTask instantiate(String className) {
    try {
      Class<?> type = Class.forName(className, true, classLoader);
      if (!TrainingTask.class.isAssignableFrom(type)) {
        throw new UnknownTaskException(className + " does not implement " + TrainingTask.class.getName());
      }
      return (TrainingTask) type.getDeclaredConstructor().newInstance();
    } catch (ClassNotFoundException e) {
      throw new UnknownTaskException(
          "unknown task '" + className + "': no such class on the classpath; known tasks: "
              + String.join(", ", byName.keySet()));
    } catch (NoSuchMethodException | InstantiationException | IllegalAccessException e) {
      throw new UnknownTaskException(className + " needs a public no-argument constructor");
    } catch (InvocationTargetException e) {
      throw new UnknownTaskException(
          className + " failed to construct: " + e.getCause().getMessage());
    }
  }

  /** A task name or class that cannot be resolved; the message is meant for users. */
  public static final class UnknownTaskException extends RuntimeException {
    UnknownTaskException(String message) {
      super(message);
    }
  }
}
