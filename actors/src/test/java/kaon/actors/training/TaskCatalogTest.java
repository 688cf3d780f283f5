package kaon.actors.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TaskCatalogTest {

  @Test
  void aRegisteredTaskThatCannotBeLoadedIsNamedInOneMessage(@TempDir Path jar) throws Exception {
    // What a user's jar looks like when it lists a class it does not hold.
    Path services = Files.createDirectories(jar.resolve("META-INF/services"));
    Files.writeString(services.resolve(TrainingTask.class.getName()), "com.example.MissingTask\n");
    try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, getClass().getClassLoader())) {
      TaskCatalog.UnknownTaskException e = assertThrows(TaskCatalog.UnknownTaskException.class, () -> TaskCatalog.load(loader));
      assertTrue(e.getMessage().contains("com.example.MissingTask") && e.getMessage().contains("tasks/"), e.getMessage());
    }
  }

  @Test
  void aJobNamesARegisteredTaskByNameAndAnyOtherByClassSoThatWorkersFindItAgain() {
    TaskCatalog catalog = TaskCatalog.load(getClass().getClassLoader());
    TrainingTask mlp = catalog.find("fashion-mnist-mlp");
    assertEquals("fashion-mnist-mlp", catalog.reference(mlp));

    // A class on the classpath but not registered: its name() means nothing to another node.
    TrainingTask unlisted = catalog.find(Unlisted.class.getName());
    String reference = catalog.reference(unlisted);
    assertEquals(Unlisted.class.getName(), reference);
    assertSame(Unlisted.class, catalog.find(reference).getClass());
    assertThrows(TaskCatalog.UnknownTaskException.class, () -> catalog.find(unlisted.name()));
  }

  /** A user's task that is not listed in META-INF/services. */
  public static final class Unlisted implements TrainingTask {
    @Override
    public String name() {
      return "unlisted";
    }

    @Override
    public String description() {
      return "a task found by its class name";
    }

    @Override
    public Block buildModel() {
      throw new UnsupportedOperationException("never trained here");
    }

    @Override
    public Shape inputShape(int batchSize) {
      return new Shape(batchSize, 1);
    }

    @Override
    public TaskData loadData(Path dataDir) {
      throw new UnsupportedOperationException("never trained here");
    }

    @Override
    public TaskDefaults defaults() {
      return new TaskDefaults(1, 1, OptimizerSpec.sgd(0.1f, 0f), 1L);
    }
  }
}
