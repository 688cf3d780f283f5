package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import kaon.protocol.v1.JobSpecification;
import kaon.runtime.cli.client.JobSpecFile.Field;
import kaon.runtime.cli.client.JobSpecFile.InvalidSpecException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class JobSpecFileTest {

  /** Every key, and what it must become. */
  private static final JobSpecification EVERY_KEY = JobSpecification.newBuilder()
      .setTask("fashion-mnist-cnn")
      .setMinWorkers(2)
      .setMaxWorkers(4)
      .setEpochs(10)
      .setGlobalBatch(256)
      .setOptimizer("adamw")
      .setLearningRate(0.001f)
      .setMomentum(0.9f)
      .setWeightDecay(0.01f)
      .setSeed(12_345_678_901L)
      .setMaxSteps(5000)
      .setCheckpointEverySteps(200)
      .setModelOutput("cnn/run-1.params")
      .build();

  @TempDir Path dir;

  private Path file(String name, String... lines) throws IOException {
    return Files.writeString(dir.resolve(name), String.join("\n", lines) + "\n");
  }

  private static String error(Path file) {
    return assertThrows(InvalidSpecException.class, () -> JobSpecFile.read(file).toSpecification()).getMessage();
  }

  @Test
  void readsEveryKeyFromYaml() throws Exception {
    Path file = file("job.yaml",
        "# A CNN on four workers at most",
        "task: fashion-mnist-cnn",
        "min-workers: 2",
        "max-workers: 4",
        "epochs: 10",
        "global-batch: 256",
        "optimizer: adamw",
        "learning-rate: 1e-3",
        "momentum: 0.9",
        "weight-decay: 0.01",
        "seed: 12345678901",
        "max-steps: 5000",
        "checkpoint-every-steps: 200",
        "model-output: cnn/run-1.params");
    assertEquals(EVERY_KEY, JobSpecFile.read(file).toSpecification());
  }

  @Test
  void readsEveryKeyFromHocon() throws Exception {
    Path file = file("job.conf",
        "// A CNN on four workers at most",
        "task = fashion-mnist-cnn",
        "min-workers = 2",
        "max-workers = 4",
        "epochs = 10",
        "global-batch = 256",
        "optimizer = adamw",
        "learning-rate = 0.001",
        "momentum = 0.9",
        "weight-decay = 0.01",
        "seed = 12345678901",
        "max-steps = 5000",
        "checkpoint-every-steps = 200",
        "model-output = \"cnn/run-1.params\"");
    assertEquals(EVERY_KEY, JobSpecFile.read(file).toSpecification());
  }

  @Test
  void leavesOutWhatTheFileLeavesOutAndDefaultsToOneWorker() throws Exception {
    JobSpecification spec = JobSpecFile.read(file("job.yml", "task: fashion-mnist-mlp", "epochs:")).toSpecification();
    assertEquals(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(1).build(),
        spec);
    assertFalse(spec.hasEpochs());
  }

  @Test
  void workersSetsBothBoundsAndMaxWorkersDefaultsToMinWorkers() throws Exception {
    JobSpecification fixed = JobSpecFile.read(file("a.hocon", "task = t", "workers = 3")).toSpecification();
    assertEquals(3, fixed.getMinWorkers());
    assertEquals(3, fixed.getMaxWorkers());
    JobSpecification atLeast = JobSpecFile.read(file("b.yaml", "task: t", "min-workers: 2")).toSpecification();
    assertEquals(2, atLeast.getMaxWorkers());
  }

  @Test
  void anUnknownKeyNamesFileLineAndTheKnownKeys() throws Exception {
    Path file = file("job.yaml", "task: t", "", "epoch: 10");
    assertEquals(file + ":3: epoch: unknown key; the keys are task, workers, min-workers, max-workers, epochs, "
        + "global-batch, optimizer, learning-rate, momentum, weight-decay, seed, max-steps, "
        + "checkpoint-every-steps, model-output", error(file));
  }

  @Test
  void aWrongTypeInYamlNamesFileLineAndKey() throws Exception {
    Path file = file("job.yaml", "task: fashion-mnist-mlp", "workers: 2", "# ten passes", "epochs: ten");
    assertEquals(file + ":4: epochs: expected a whole number, got \"ten\"", error(file));
  }

  @Test
  void aWrongTypeInHoconNamesFileLineAndKey() throws Exception {
    Path file = file("job.conf", "task = fashion-mnist-mlp", "", "learning-rate = fast");
    assertEquals(file + ":3: learning-rate: expected a number, got \"fast\"", error(file));
  }

  @Test
  void aListWhereAValueBelongsIsAWrongType() throws Exception {
    Path file = file("job.yaml", "task: [a, b]");
    assertEquals(file + ":1: task: expected a string, got a list", error(file));
  }

  @Test
  void aNumberTooLargeForItsFieldIsAWrongType() throws Exception {
    Path file = file("job.conf", "task = t", "epochs = 3000000000");
    assertEquals(file + ":2: epochs: expected a whole number from -2147483648 to 2147483647, got \"3000000000\"",
        error(file));
  }

  @Test
  void aMissingTaskPointsAtTheStartOfTheSettings() throws Exception {
    Path yaml = file("job.yaml", "# no task here", "epochs: 3");
    assertEquals(yaml + ":2: task: missing; say which task to train (see 'kaon tasks')", error(yaml));
    Path hocon = file("job.conf", "epochs = 3");
    assertEquals(hocon + ":1: task: missing; say which task to train (see 'kaon tasks')", error(hocon));
  }

  @Test
  void reportsEveryMistakeOnItsOwnLine() throws Exception {
    Path file = file("job.yaml", "task: t", "epochs: 1.5", "seed: x", "epochs: 2");
    assertEquals(String.join(System.lineSeparator(),
        file + ":2: epochs: expected a whole number, got \"1.5\"",
        file + ":3: seed: expected a whole number, got \"x\"",
        file + ":4: epochs: given twice (first on line 2)"), error(file));
  }

  @Test
  void workersCannotBeCombinedWithBounds() throws Exception {
    Path file = file("job.yaml", "task: t", "workers: 2", "max-workers: 4");
    assertEquals(file + ":3: max-workers: cannot be combined with workers (line 2); give workers for a fixed size, "
        + "or min-workers and max-workers", error(file));
  }

  @Test
  void invalidSyntaxNamesTheLine() throws Exception {
    Path yaml = file("job.yaml", "task: t", "epochs: [1", "seed: 2");
    assertEquals(yaml + ":3: not valid YAML: expected ',' or ']', but got :", error(yaml));
    Path hocon = file("job.conf", "task = t", "epochs = {");
    assertEquals(hocon + ":3: not valid HOCON: expecting a close parentheses ')' here, not: end of file", error(hocon));
  }

  @Test
  void anUnknownExtensionOrMissingFileIsAnError() throws Exception {
    Path json = file("job.json", "{}");
    assertEquals(json + ": unknown kind of spec file; name it .yaml, .yml, .conf or .hocon", error(json));
    Path missing = dir.resolve("nope.yaml");
    assertEquals(missing + ": no such file", error(missing));
  }

  @Test
  void flagsReplaceTheFilesValues() throws Exception {
    Path file = file("job.yaml", "task: fashion-mnist-mlp", "workers: 2", "epochs: 10", "learning-rate: 0.1");
    JobSpecification spec = JobSpecFile.read(file)
        .set(Field.EPOCHS, 3)
        .set(Field.MAX_WORKERS, 4)
        .set(Field.LEARNING_RATE, null)
        .set(Field.SEED, 7L)
        .toSpecification();
    assertEquals(3, spec.getEpochs());
    assertEquals(2, spec.getMinWorkers());
    assertEquals(4, spec.getMaxWorkers());
    assertEquals(0.1f, spec.getLearningRate());
    assertEquals(7L, spec.getSeed());
  }

  @Test
  void submitFlagsApplyOnTopOfTheFile() throws Exception {
    Path file = file("job.conf", "task = fashion-mnist-mlp", "min-workers = 1", "max-workers = 4", "epochs = 10");
    SubmitCommand submit = new SubmitCommand();
    new CommandLine(submit).parseArgs(file.toString(), "--workers", "2", "--lr", "0.05", "--epochs", "1");
    JobSpecification spec = submit.specification();
    assertEquals(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2)
        .setEpochs(1).setLearningRate(0.05f).build(), spec);
  }

  @Test
  void submitWorksFromFlagsAlone() throws Exception {
    SubmitCommand submit = new SubmitCommand();
    new CommandLine(submit).parseArgs("--task", "fashion-mnist-mlp", "--min-workers", "1", "--max-workers", "3");
    assertEquals(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(3).build(),
        submit.specification());

    SubmitCommand noTask = new SubmitCommand();
    new CommandLine(noTask).parseArgs("--epochs", "3");
    assertEquals("no task: give --task NAME or a spec FILE (see 'kaon tasks')",
        assertThrows(InvalidSpecException.class, noTask::specification).getMessage());
  }

  @Test
  void submitRejectsWorkersTogetherWithBounds() {
    SubmitCommand submit = new SubmitCommand();
    new CommandLine(submit).parseArgs("--task", "t", "--workers", "2", "--max-workers", "3");
    assertThrows(CommandLine.ParameterException.class, submit::specification);
  }
}
