package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which model-output names a node accepts, and where it writes them. */
class ModelFileTest {

  private static String problem(String name) {
    Optional<String> problem = ModelFile.problem(name);
    assertTrue(problem.isPresent(), "'" + name + "' was accepted");
    return problem.get();
  }

  @Test
  void acceptsRelativeNamesWithDirectories() {
    assertEquals(Optional.empty(), ModelFile.problem("mlp.params"));
    assertEquals(Optional.empty(), ModelFile.problem("runs/2026-12/mlp v2.params"));
    assertEquals(Optional.empty(), ModelFile.problem("..hidden/.params..x"));
  }

  @Test
  void refusesAnEmptyName() {
    assertTrue(problem("").startsWith("must not be empty"));
  }

  @Test
  void refusesAbsolutePaths() {
    assertTrue(problem("/tmp/mlp.params").contains("not an absolute path"));
    assertTrue(problem("//etc/cron.d/x").contains("not an absolute path"));
  }

  @Test
  void refusesDotDotSegmentsAnywhere() {
    assertTrue(problem("..").contains("'..' segments"));
    assertTrue(problem("../mlp.params").contains("'..' segments"));
    assertTrue(problem("a/../../mlp.params").contains("'..' segments"));
    assertTrue(problem("a/..").contains("'..' segments"));
  }

  @Test
  void refusesDotSegments() {
    assertTrue(problem("./mlp.params").contains("'.' or '..' segments"));
  }

  @Test
  void refusesEmptySegments() {
    assertTrue(problem("a//b.params").contains("empty segments"));
    assertTrue(problem("models/").contains("empty segments"));
  }

  @Test
  void refusesBackslashes() {
    assertTrue(problem("..\\..\\mlp.params").contains("backslash"));
  }

  @Test
  void refusesControlCharacters() {
    assertTrue(problem("mlp\u0000.params").contains("U+0000 at index 3"));
    assertTrue(problem("mlp\n.params").contains("control characters"));
    assertTrue(problem("mlp\u007f").contains("control characters"));
    assertTrue(problem("mlp\u0085").contains("control characters"));
  }

  @Test
  void refusesNamesOverTheLimitInBytes() {
    assertEquals(Optional.empty(), ModelFile.problem("m".repeat(ModelFile.MAX_BYTES)));
    assertTrue(problem("m".repeat(ModelFile.MAX_BYTES + 1)).contains("at most 255 bytes long, was 256"));
    // Two bytes each in UTF-8: 128 characters are 256 bytes.
    assertTrue(problem("é".repeat(128)).contains("was 256"));
  }

  @Test
  void writesUnderTheDirectoryCreatingItsParents(@TempDir Path dir) throws IOException {
    Path models = dir.resolve("models");
    Path written = ModelFile.write(models, "runs/a/mlp.params", new byte[] {1, 2, 3});
    assertEquals(models.toRealPath().resolve("runs/a/mlp.params"), written);
    assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(written));
    // Written again: replaced, and no temporary file is left behind.
    ModelFile.write(models, "runs/a/mlp.params", new byte[] {4});
    assertArrayEquals(new byte[] {4}, Files.readAllBytes(written));
    try (var files = Files.list(written.getParent())) {
      assertEquals(1, files.count());
    }
  }

  @Test
  void writesNothingForARefusedName(@TempDir Path dir) {
    IOException e = assertThrows(IOException.class, () -> ModelFile.write(dir.resolve("models"), "../escaped.params", new byte[] {1}));
    assertTrue(e.getMessage().contains("'..' segments"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("escaped.params")));
  }

  @Test
  void refusesALinkThatLeadsOutOfTheDirectory(@TempDir Path dir) throws IOException {
    Path models = Files.createDirectories(dir.resolve("models"));
    Path outside = Files.createDirectories(dir.resolve("outside"));
    Files.createSymbolicLink(models.resolve("link"), outside);
    IOException e = assertThrows(IOException.class, () -> ModelFile.write(models, "link/sub/mlp.params", new byte[] {1}));
    assertTrue(e.getMessage().contains("symbolic link"), e.getMessage());
    try (var files = Files.list(outside)) {
      assertEquals(0, files.count(), "something was created outside the model directory");
    }
  }

  @Test
  void replacesALinkAtTheTargetInsteadOfWritingThroughIt(@TempDir Path dir) throws IOException {
    Path models = Files.createDirectories(dir.resolve("models"));
    Path victim = Files.write(dir.resolve("victim"), new byte[] {9});
    Files.createSymbolicLink(models.resolve("mlp.params"), victim);
    ModelFile.write(models, "mlp.params", new byte[] {1});
    assertArrayEquals(new byte[] {9}, Files.readAllBytes(victim));
    assertFalse(Files.isSymbolicLink(models.resolve("mlp.params")));
  }
}
