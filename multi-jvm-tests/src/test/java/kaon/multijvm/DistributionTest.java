package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tarball as an operator uses it: unpacked, installed by its own install.sh into a prefix,
 * and run from there with nothing of the build on the classpath. A user's training task, compiled
 * here against the installed jars, is dropped into the installation's tasks/ and trained. Asserts
 * through exit codes, what the scripts and the CLI print, and the files install.sh writes; each
 * command's output is kept under {@code target/node-logs/distribution-*.log}.
 */
class DistributionTest {

  /** Set by this module's pom: deploy/target/kaon-<version>.tar.gz of this build. */
  private static final String TARBALL = System.getProperty("kaon.distribution", "");

  /** Every argument install.sh writes into kaon.conf. */
  private static final List<String> SETTINGS = List.of("--cluster-name", "lab", "--bind", "10.0.0.11",
      "--discovery", "config:10.0.0.11,10.0.0.12,10.0.0.13", "--cassandra", "10.0.0.21:9042,10.0.0.22:9042",
      "--cassandra-dc", "dc1", "--token-file", "/etc/kaon/token", "--devices", "2", "--roles", "worker,gateway");

  @TempDir static Path work;
  private static Path unpacked;
  private static Path prefix;
  private static String version;

  private record Run(int exitCode, String out, String err) {}

  @BeforeAll
  static void unpackAndInstall() throws Exception {
    assertTrue(Files.isRegularFile(Path.of(TARBALL)), "no tarball at '" + TARBALL + "': deploy/ builds it in `mvn package`");
    Path dist = Files.createDirectories(work.resolve("dist"));
    assertEquals(0, run("unpack", Map.of(), "tar", "-xzf", TARBALL, "-C", dist.toString()).exitCode());
    try (Stream<Path> top = Files.list(dist)) {
      unpacked = top.findFirst().orElseThrow();
    }
    version = Files.readString(unpacked.resolve("VERSION")).trim();
    assertEquals("kaon-" + version, unpacked.getFileName().toString(), "the tarball's top directory");
    // Canonical, as install.sh writes it into kaon.conf and the unit.
    prefix = work.toRealPath().resolve("root");
    List<String> install = new ArrayList<>(List.of(unpacked.resolve("install.sh").toString(), "--prefix", prefix.toString()));
    install.addAll(SETTINGS);
    Run first = run("install-1", Map.of(), install.toArray(String[]::new));
    assertEquals(0, first.exitCode(), first.err());
  }

  @Test
  void installScriptIsIdempotentRefusesBadArgumentsAndRollsBack() throws Exception {
    Path opt = prefix.resolve("opt/kaon");
    Path conf = prefix.resolve("etc/kaon/kaon.conf");
    String written = Files.readString(conf);

    Config config = ConfigFactory.parseFile(conf.toFile()).withFallback(ConfigFactory.defaultReference()).resolve();
    assertEquals("cluster", config.getString("pekko.actor.provider"), "the template includes application.conf");
    assertEquals("vm", config.getString("kaon.mode"));
    assertEquals("lab", config.getString("kaon.cluster.name"));
    assertEquals("10.0.0.11", config.getString("kaon.cluster.bind-address"));
    assertEquals("config", config.getString("kaon.cluster.discovery.method"));
    assertEquals(List.of("10.0.0.11", "10.0.0.12", "10.0.0.13"), config.getStringList("kaon.cluster.discovery.hosts"));
    assertEquals(List.of("10.0.0.21:9042", "10.0.0.22:9042"), config.getStringList("kaon.cassandra.contact-points"));
    assertEquals("dc1", config.getString("kaon.cassandra.local-datacenter"));
    assertEquals("/etc/kaon/token", config.getString("kaon.grpc.auth.token-file"));
    assertEquals(2, config.getInt("kaon.node.cpu-slots"));
    assertEquals(List.of("worker", "gateway"), config.getStringList("pekko.cluster.roles"));
    assertEquals(prefix.resolve("var/lib/kaon").toString(), config.getString("kaon.node.state-dir"));
    assertEquals(prefix.resolve("var/log/kaon").toString(), config.getString("kaon.node.log-dir"));
    assertTrue(Files.isDirectory(prefix.resolve("var/lib/kaon")) && Files.isDirectory(prefix.resolve("var/log/kaon")));

    List<String> unit = Files.readAllLines(prefix.resolve("etc/systemd/system/kaon-node.service"));
    String execStart = opt.resolve("current/bin/kaon") + " --config " + conf + " node";
    assertTrue(unit.contains("ExecStart=" + execStart), "ExecStart in " + unit);
    for (String line : List.of("Type=simple", "User=kaon", "Restart=on-failure", "KillSignal=SIGTERM", "LimitNOFILE=65536")) {
      assertTrue(unit.contains(line), line + " in " + unit);
    }
    assertTrue(unit.stream().anyMatch(l -> l.matches("TimeoutStopSec=([6-9]\\d|\\d{3,})")), "a stop timeout of a minute or more");

    // The unit's own line, by hand, asked for the version instead of running a node.
    String[] byHand = execStart.replaceFirst(" node$", " --version").split(" ");
    Run installed = run("installed-version", Map.of(), byHand);
    assertEquals(0, installed.exitCode(), installed.err());
    assertTrue(installed.out().matches("kaon " + Pattern.quote(version) + " \\(commit ([0-9a-f]{12}|unknown)\\)\\s*"), installed.out());

    // Again, same arguments: nothing changes, and the existing configuration is kept.
    List<String> again = new ArrayList<>(List.of(unpacked.resolve("install.sh").toString(), "--prefix", prefix.toString()));
    again.addAll(SETTINGS);
    Run second = run("install-2", Map.of(), again.toArray(String[]::new));
    assertEquals(0, second.exitCode(), second.err());
    assertTrue(second.out().contains("already installed"), second.out());
    assertTrue(second.out().contains("kept " + conf), second.out());
    assertEquals(written, Files.readString(conf));
    assertEquals(version, Files.readSymbolicLink(opt.resolve("current")).toString());

    Run bad = run("install-bad-argument", Map.of(), unpacked.resolve("install.sh").toString(), "--prefix", prefix.toString(), "--colour", "blue");
    assertEquals(2, bad.exitCode());
    assertTrue(bad.err().contains("unknown argument: --colour") && bad.err().contains("usage: install.sh"), bad.err());
    Run missing = run("install-missing-arguments", Map.of(), unpacked.resolve("install.sh").toString(),
        "--prefix", work.resolve("other-root").toString(), "--bind", "10.0.0.11");
    assertEquals(2, missing.exitCode());
    assertTrue(missing.err().contains("--discovery is required") && missing.err().contains("usage: install.sh"), missing.err());
    assertTrue(Files.notExists(work.resolve("other-root")), "a refused install changes nothing");

    // An upgrade installs beside the running version; --rollback switches back.
    Path next = copyWithVersion(unpacked, work.resolve("dist/kaon-next"), version + "-next");
    Run upgrade = run("install-upgrade", Map.of(), next.resolve("install.sh").toString(), "--prefix", prefix.toString());
    assertEquals(0, upgrade.exitCode(), upgrade.err());
    assertEquals(version + "-next", Files.readSymbolicLink(opt.resolve("current")).toString());
    assertTrue(Files.isDirectory(opt.resolve(version)), "the previous version stays");
    Run rollback = run("install-rollback", Map.of(), opt.resolve("current/install.sh").toString(), "--rollback", "--prefix", prefix.toString());
    assertEquals(0, rollback.exitCode(), rollback.err());
    assertEquals(version, Files.readSymbolicLink(opt.resolve("current")).toString());
    assertEquals(written, Files.readString(conf));
  }

  @Test
  void aTaskJarInTheTasksDirectoryIsListedAndTrains() throws Exception {
    Path home = prefix.resolve("opt/kaon/current");
    Path jar = buildTaskJar(home.resolve("lib"), work.resolve("task-build"));
    String kaon = home.resolve("bin/kaon").toString();

    // From a directory named by KAON_TASKS_DIR, then from the installation's own tasks/.
    Run fromEnv = run("tasks-from-env", Map.of("KAON_TASKS_DIR", jar.getParent().toString()), kaon, "tasks");
    assertEquals(0, fromEnv.exitCode(), fromEnv.err());
    assertTrue(fromEnv.out().contains("which-is-larger"), fromEnv.out());
    Files.copy(jar, home.resolve("tasks").resolve(jar.getFileName()));
    Run listed = run("tasks", Map.of(), kaon, "tasks");
    assertEquals(0, listed.exitCode(), listed.err());
    assertTrue(listed.out().lines().anyMatch(l -> l.startsWith("which-is-larger ") && l.contains("linear model")), listed.out());
    assertTrue(listed.out().contains("fashion-mnist-mlp"), "the built-in tasks are still there: " + listed.out());

    // Keyspaces of its own, named in a --config file only: that they exist afterwards shows the
    // node read the file. The file is the installed template, which must work as it is.
    Map<String, String> keyspaces = KaonProcess.isolated(Map.of());
    Path conf = work.resolve("train.conf");
    Files.writeString(conf, Files.readString(home.resolve("conf/kaon.conf.template"))
        + "\npekko.persistence.cassandra.journal.keyspace = \"" + keyspaces.get("KAON_JOURNAL_KEYSPACE") + "\""
        + "\npekko.persistence.cassandra.snapshot.keyspace = \"" + keyspaces.get("KAON_SNAPSHOT_KEYSPACE") + "\"\n");
    String contactPoint = System.getenv().getOrDefault("KAON_CASSANDRA_CONTACT_POINT", "127.0.0.1:9042");
    Run train = run("train-user-task", Map.of("KAON_CASSANDRA_CONTACT_POINT", contactPoint), kaon, "--config", conf.toString(),
        "train", "--task", "which-is-larger", "--workers", "1", "--epochs", "4", "--threads-per-worker", "1");
    assertEquals(0, train.exitCode(), train.out() + train.err());
    assertTrue(train.out().contains("Training which-is-larger on 1 worker"), train.out());
    Matcher done = Pattern.compile("Test accuracy: (\\d\\.\\d{4}) after 4 epochs .*; job \\S+ succeeded").matcher(train.out());
    assertTrue(done.find(), train.out());
    // The two classes are split by a line: a linear model that trained separates them well.
    assertTrue(Double.parseDouble(done.group(1)) > 0.8, "test accuracy " + done.group(1));
    assertTrue(keyspaceExists(contactPoint, keyspaces.get("KAON_JOURNAL_KEYSPACE")), "the journal keyspace of the --config file");
  }

  /** A jar with one TrainingTask, registered for ServiceLoader, compiled against {@code lib}'s jars. */
  private static Path buildTaskJar(Path lib, Path dir) throws IOException {
    Path source = dir.resolve("src/example/WhichIsLargerTask.java");
    Files.createDirectories(source.getParent());
    Files.writeString(source, """
        package example;

        import ai.djl.ndarray.types.Shape;
        import ai.djl.nn.Block;
        import ai.djl.nn.SequentialBlock;
        import ai.djl.nn.core.Linear;
        import java.nio.file.Path;
        import java.util.Random;
        import kaon.actors.data.LabeledImages;
        import kaon.actors.training.OptimizerSpec;
        import kaon.actors.training.TaskData;
        import kaon.actors.training.TaskDefaults;
        import kaon.actors.training.TrainingTask;

        public final class WhichIsLargerTask implements TrainingTask {
          public String name() { return "which-is-larger"; }
          public String description() { return "pairs of numbers: is the first the larger? (a linear model)"; }
          public Block buildModel() { return new SequentialBlock().add(Linear.builder().setUnits(2).build()); }
          public Shape inputShape(int batchSize) { return new Shape(batchSize, 2); }
          public TaskData loadData(Path dataDir) { return new TaskData(pairs(1024, 1), pairs(256, 2)); }
          public TaskDefaults defaults() { return new TaskDefaults(4, 32, OptimizerSpec.sgd(0.5f, 0f), 7L); }

          private static LabeledImages pairs(int count, long seed) {
            Random random = new Random(seed);
            float[] values = new float[count * 2];
            int[] labels = new int[count];
            for (int i = 0; i < count; i++) {
              values[2 * i] = random.nextFloat();
              values[2 * i + 1] = random.nextFloat();
              labels[i] = values[2 * i] > values[2 * i + 1] ? 1 : 0;
            }
            return new LabeledImages(values, labels, count, 1, 2);
          }
        }
        """);
    Path classes = Files.createDirectories(dir.resolve("classes"));
    String classpath;
    try (Stream<Path> jars = Files.list(lib)) {
      classpath = String.join(File.pathSeparator, jars.map(Path::toString).toList());
    }
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    int compiled = javac.run(null, null, null, "--release", "17", "-cp", classpath, "-d", classes.toString(), source.toString());
    assertEquals(0, compiled, "javac of the example task");
    Path jar = Files.createDirectories(dir.resolve("jar")).resolve("which-is-larger.jar");
    try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
      out.putNextEntry(new JarEntry("META-INF/services/kaon.actors.training.TrainingTask"));
      out.write("example.WhichIsLargerTask\n".getBytes(StandardCharsets.UTF_8));
      out.putNextEntry(new JarEntry("example/WhichIsLargerTask.class"));
      out.write(Files.readAllBytes(classes.resolve("example/WhichIsLargerTask.class")));
      out.closeEntry();
    }
    return jar;
  }

  /** A copy of the unpacked distribution that says it is {@code newVersion} (hard links: it is only read). */
  private static Path copyWithVersion(Path from, Path to, String newVersion) throws IOException {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Path target = to.resolve(from.relativize(file).toString());
        if (Files.isDirectory(file)) {
          Files.createDirectories(target);
        } else if (!file.getFileName().toString().equals("VERSION")) {
          Files.createLink(target, file);
        }
      }
    }
    Files.writeString(to.resolve("VERSION"), newVersion + "\n");
    return to;
  }

  private static boolean keyspaceExists(String contactPoint, String keyspace) {
    int colon = contactPoint.lastIndexOf(':');
    try (CqlSession session = CqlSession.builder()
        .addContactPoint(new InetSocketAddress(contactPoint.substring(0, colon), Integer.parseInt(contactPoint.substring(colon + 1))))
        .withLocalDatacenter("datacenter1")
        .build()) {
      return session.getMetadata().getKeyspace(keyspace).isPresent();
    }
  }

  /** Runs {@code command} to its end; stdout and stderr kept apart, and in the test's logs. */
  private static Run run(String name, Map<String, String> env, String... command) throws Exception {
    Files.createDirectories(KaonProcess.LOGS);
    Path out = KaonProcess.LOGS.resolve("distribution-" + name + ".out");
    Path err = KaonProcess.LOGS.resolve("distribution-" + name + ".err");
    ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
    builder.environment().putAll(env);
    Process process = builder.start();
    if (!process.waitFor(3, TimeUnit.MINUTES)) {
      process.destroyForcibly().waitFor();
      throw new AssertionError(name + " did not end within 3 minutes: " + String.join(" ", command) + "; see " + out);
    }
    try (OutputStream log = Files.newOutputStream(KaonProcess.LOGS.resolve("distribution-" + name + ".log"))) {
      log.write(("$ " + String.join(" ", command) + "\n").getBytes(StandardCharsets.UTF_8));
      log.write(Files.readAllBytes(out));
      log.write(("--- stderr, exit code " + process.exitValue() + "\n").getBytes(StandardCharsets.UTF_8));
      log.write(Files.readAllBytes(err));
    }
    Run result = new Run(process.exitValue(), Files.readString(out), Files.readString(err));
    Files.delete(out);
    Files.delete(err);
    return result;
  }
}
