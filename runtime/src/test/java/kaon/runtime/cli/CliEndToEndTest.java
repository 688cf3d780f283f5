package kaon.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import kaon.actors.training.TaskCatalog;
import kaon.runtime.KaonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The kaon CLI against a real node over its real gRPC port: submit a job from a YAML file and
 * watch it, list it, show it, refuse to cancel it once done, scale errors, the cluster table, and
 * a wrong token.
 */
class CliEndToEndTest {

  private static KaonNode.Running node;
  private static String endpoint;
  @TempDir static Path dir;
  private static Path tokenFile;

  private record Run(int exitCode, String out, String err) {}

  @BeforeAll
  static void start() throws Exception {
    String token = UUID.randomUUID().toString();
    tokenFile = dir.resolve("token");
    Files.writeString(tokenFile, token + "\n");
    var config = kaon.runtime.TestNodes.withOwnJournal(ConfigFactory.empty()
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef(token))
        .withValue("kaon.worker.model-dir", ConfigValueFactory.fromAnyRef(dir.resolve("models").toString()))
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(2))
        .withFallback(ConfigFactory.load()));
    node = KaonNode.startLocal(config, TaskCatalog.load(CliEndToEndTest.class.getClassLoader()), line -> {});
    endpoint = "127.0.0.1:" + node.grpcPort();
  }

  @AfterAll
  static void stop() throws Exception {
    node.system().terminate();
    node.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static Run kaon(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--endpoint", endpoint, "--token-file", tokenFile.toString()));
    CommandLine cli = KaonCli.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(all.toArray(String[]::new));
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void aJobFromAYamlFileIsSubmittedWatchedListedAndShown() throws Exception {
    Path spec = dir.resolve("job.yaml");
    Files.writeString(spec, """
        task: fashion-mnist-mlp
        workers: 2
        epochs: 1
        max-steps: 80
        checkpoint-every-steps: 40
        model-output: runs/cli.params
        """);
    String id = "cli-" + UUID.randomUUID().toString().substring(0, 8);
    Run submit = kaon("submit", spec.toString(), "--request-id", id, "--watch");
    assertEquals(0, submit.exitCode(), submit.out() + submit.err());
    assertTrue(submit.out().contains("Submitted job " + id), submit.out());
    assertTrue(submit.out().matches("(?s).*Epoch 1, loss: \\d\\.\\d{4}, train acc: 0\\.\\d{4}, val acc: 0\\.\\d{4} .*"), submit.out());
    assertTrue(submit.out().contains("job " + id + " succeeded"), submit.out());

    Run jobs = kaon("jobs");
    assertEquals(0, jobs.exitCode(), jobs.err());
    assertTrue(jobs.out().lines().anyMatch(l -> l.startsWith(id) && l.contains("succeeded")), jobs.out());

    Run job = kaon("job", id);
    assertEquals(0, job.exitCode(), job.err());
    assertTrue(job.out().toLowerCase(java.util.Locale.ROOT).contains("succeeded") && job.out().contains("step 40"), job.out());
    assertTrue(job.out().contains("model output runs/cli.params"), job.out());

    // The model: written by rank 0 under the node's model directory, and downloadable by any client.
    Path downloaded = dir.resolve("downloaded.params");
    Run download = kaon("job", id, "--download", downloaded.toString());
    assertEquals(0, download.exitCode(), download.err());
    byte[] model = Files.readAllBytes(downloaded);
    assertArrayEquals(Files.readAllBytes(dir.resolve("models/runs/cli.params")), model);
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(model));
    assertTrue(job.out().contains("parameters sha256 " + sha), "the job's digest is the file's sha256: " + job.out());
    assertTrue(download.out().contains("sha256 " + sha), download.out());

    Run cancel = kaon("cancel", id);
    assertEquals(1, cancel.exitCode());
    assertTrue(cancel.err().contains("already ended"), cancel.err());

    Run watch = kaon("watch", id);
    assertEquals(0, watch.exitCode(), watch.err());
    assertTrue(watch.out().contains("job " + id + " succeeded"), watch.out());
  }

  @Test
  void badInputIsOneLineWithTheFieldAndNoStackTrace() throws Exception {
    Path spec = dir.resolve("bad.yaml");
    Files.writeString(spec, "task: fashion-mnist-mlp\nepochs: 0\n");
    Run submit = kaon("submit", spec.toString());
    assertEquals(2, submit.exitCode());
    assertTrue(submit.err().contains("spec.epochs"), submit.err());
    assertTrue(!submit.err().contains("\tat "), submit.err());

    Run scale = kaon("scale", "no-such-job", "--min", "3", "--max", "2");
    assertEquals(2, scale.exitCode());
    assertTrue(scale.err().contains("max_workers"), scale.err());

    Run missing = kaon("job", "no-such-job");
    assertEquals(1, missing.exitCode());
    assertTrue(missing.err().contains("does not exist"), missing.err());
  }

  @Test
  void theClusterCommandShowsMembersAndDevices() {
    // The node's agent registers with the receptionist as the node starts: wait for it to show.
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    Run cluster = kaon("cluster");
    while (!cluster.out().contains("cpu:1") && System.nanoTime() < deadline) {
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
      cluster = kaon("cluster");
    }
    assertEquals(0, cluster.exitCode(), cluster.err());
    assertTrue(cluster.out().contains("Up"), cluster.out());
    assertTrue(cluster.out().contains("cpu:0") && cluster.out().contains("cpu:1"), cluster.out());
  }

  @Test
  void aWrongTokenIsRefused() throws Exception {
    Path wrong = dir.resolve("wrong-token");
    Files.writeString(wrong, "not-the-token\n");
    CommandLine cli = KaonCli.commandLine();
    StringWriter err = new StringWriter();
    cli.setErr(new PrintWriter(err, true));
    cli.setOut(new PrintWriter(new StringWriter(), true));
    int code = cli.execute("jobs", "--endpoint", endpoint, "--token-file", wrong.toString());
    assertEquals(3, code);
    assertTrue(err.toString().contains("refused the token"), err.toString());
  }
}
