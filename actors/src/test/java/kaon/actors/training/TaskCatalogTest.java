package kaon.actors.training;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}
