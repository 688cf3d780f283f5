package kaon.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The CLI end to end in this JVM: arguments, environment errors and a short real job. */
class TrainCommandTest {

  private record Run(int exitCode, String out, String err) {}

  private static Run kaon(String... args) {
    CommandLine cli = KaonCli.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void trainsAShortJobOnTwoWorkersAndPrintsEpochLines(@TempDir Path dir) throws Exception {
    Path model = dir.resolve("mlp.params");
    Run run = kaon("train", "--workers", "2", "--epochs", "1", "--max-steps", "60", "--output", model.toString());
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().contains("Training fashion-mnist-mlp on 2 workers"), run.out());
    assertTrue(run.out().matches("(?s).*Epoch 1, loss: \\d\\.\\d{4}, train acc: 0\\.\\d{4}, val acc: 0\\.\\d{4} .*"), run.out());
    assertTrue(run.out().contains("Test accuracy: "), run.out());
    // Output is not a terminal here: no progress bar escapes in it.
    assertFalse(run.out().contains("\r"), run.out());
    assertTrue(model.toFile().length() > 400_000, "model file " + model.toFile().length() + " bytes");
    // Downloaded through the API and checked: its sha256 is the job's digest.
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(model)));
    assertTrue(run.out().contains("parameters sha256 " + sha), run.out());
    assertTrue(run.out().contains("Model saved to " + model), run.out());
  }

  @Test
  void anOutputInADirectoryThatDoesNotExistIsRefusedBeforeTraining(@TempDir Path dir) {
    Run run = kaon("train", "--output", dir.resolve("missing/mlp.params").toString());
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--output: the directory of "), run.err());
  }

  @Test
  void missingDataIsOneClearMessageAndExitCode3(@TempDir Path empty) {
    Run run = kaon("train", "--data-dir", empty.toString());
    assertEquals(KaonCli.ENVIRONMENT, run.exitCode());
    assertTrue(run.err().contains(empty.toString()), "names the directory: " + run.err());
    assertTrue(run.err().contains("apt-get install dataset-fashion-mnist"), run.err());
    assertFalse(run.err().contains("\tat "), "stack trace in: " + run.err());
  }

  @Test
  void anUnknownTaskNamesTheKnownOnes() {
    Run run = kaon("train", "--task", "imagenet");
    assertEquals(KaonCli.ENVIRONMENT, run.exitCode());
    assertTrue(run.err().contains("unknown task 'imagenet'"), run.err());
    assertTrue(run.err().contains("fashion-mnist-mlp"), run.err());
  }

  @Test
  void invalidOptionsAreUsageErrorsNamingTheOption() {
    assertEquals(2, kaon("train", "--workers", "0").exitCode());
    Run batch = kaon("train", "--workers", "4", "--batch", "3");
    assertEquals(2, batch.exitCode());
    assertTrue(batch.err().contains("--batch 3 cannot be split over 4 workers"), batch.err());
    Run optimizer = kaon("train", "--optimizer", "lbfgs");
    assertEquals(2, optimizer.exitCode());
    assertTrue(optimizer.err().contains("unknown optimizer 'lbfgs'"), optimizer.err());
  }

  @Test
  void tasksListsTheBuiltInTasks() {
    Run run = kaon("tasks");
    assertEquals(0, run.exitCode());
    assertTrue(run.out().contains("fashion-mnist-mlp") && run.out().contains("fashion-mnist-cnn"), run.out());
  }
}
