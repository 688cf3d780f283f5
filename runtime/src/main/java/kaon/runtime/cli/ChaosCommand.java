package kaon.runtime.cli;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.JobSpecification;
import kaon.runtime.chaos.BaselineCache;
import kaon.runtime.chaos.ChaosCluster;
import kaon.runtime.chaos.ChaosReport;
import kaon.runtime.chaos.ChaosRun;
import kaon.runtime.chaos.HistoryChecker;
import kaon.runtime.chaos.HistoryFile;
import kaon.runtime.chaos.LocalCluster;
import kaon.runtime.chaos.VmCluster;
import kaon.runtime.chaos.Observation;
import kaon.runtime.chaos.Scenario;
import kaon.runtime.chaos.ScenarioFile;
import kaon.runtime.chaos.Verdict;
import kaon.runtime.cli.client.JobSpecFile;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon chaos}: failure injection and its checker. {@code run} plays a scenario file on a
 * cluster of its own, {@code random} a random schedule without a file; both record a history and
 * judge it. {@code check} judges a recorded history again (after a checker change, or a history
 * written by hand) and writes its report.
 */
@Command(name = "chaos", mixinStandardHelpOptions = true,
    description = "Inject faults into a training cluster and check Kaon's invariants.",
    subcommands = {ChaosCommand.Run.class, ChaosCommand.RandomFaults.class, ChaosCommand.Check.class})
final class ChaosCommand {

  /** Options shared by run and random. */
  static final class RunOptions {
    @Option(names = "--seed", paramLabel = "S", description = "Seed of every random choice (default: the time; printed).")
    Long seed;

    @Option(names = "--report", paramLabel = "DIR",
        description = "Where history.jsonl, report.md, timeline.svg and the cluster's logs go (default: ./chaos-<time>).")
    Path report;

    @Option(names = "--fresh-baseline", description = "Train the fault-free baseline again instead of taking it from the cache.")
    boolean freshBaseline;

    @Option(names = "--cluster", paramLabel = "local|vms", defaultValue = "local",
        description = "Where the run's nodes are: local (deploy/local, this machine's processes) or vms (three namespace"
            + " VMs of deploy/vm/netns-vms.sh, installed from --tarball; needs root; takes network faults too).")
    String cluster;

    @Option(names = "--tarball", paramLabel = "FILE",
        description = "The distribution the VMs install (default: the newest deploy/target/kaon-*.tar.gz).")
    Path tarball;
  }

  /** The VMs' address range: its own, apart from deploy/vm's default (10.77.0) that its test and bench use. */
  private static final String VMS_NET = "10.78.0";

  /**
   * Runs scenarios one after another on one local cluster of their own (started once; each
   * scenario's faults are undone before the next begins) and prints each verdict. With several
   * scenarios each gets its own directory in the report's, named after it.
   */
  static int play(CommandSpec command, List<Scenario> scenarios, RunOptions options, boolean repeat) {
    PrintWriter err = command.commandLine().getErr();
    if (!options.cluster.equals("local") && !options.cluster.equals("vms")) {
      err.println("kaon chaos: --cluster: expected local or vms, got \"" + options.cluster + "\"");
      return 2;
    }
    boolean vms = options.cluster.equals("vms");
    List<String> needVms = new ArrayList<>();
    for (Scenario scenario : scenarios) {
      for (Scenario.FaultRule rule : scenario.faults()) {
        if (!vms && rule.oneOf().stream().anyMatch(f -> f instanceof Scenario.Fault.Network)) {
          needVms.add("scenario \"" + scenario.name() + "\", line " + rule.line()
              + ": network faults need the namespace VMs (--cluster vms)");
        }
      }
      if (vms && scenario.nodes() != 3) {
        needVms.add("scenario \"" + scenario.name() + "\": the namespace VMs are 3 nodes, not " + scenario.nodes());
      }
    }
    if (!needVms.isEmpty()) {
      needVms.forEach(m -> err.println("kaon chaos: " + m));
      return 2;
    }
    // The run reads Cassandra while its faults take it away: the driver's warnings about that are
    // the run's own doing, not news (the history records what could not be read).
    ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("com.datastax.oss.driver"))
        .setLevel(ch.qos.logback.classic.Level.ERROR);
    long seed = options.seed != null ? options.seed : System.currentTimeMillis();
    Path report = options.report != null ? options.report
        : Path.of("chaos-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT)));
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    int nodes = scenarios.stream().mapToInt(Scenario::nodes).max().orElse(3);
    ChaosCluster cluster;
    Path home = Path.of(System.getProperty("kaon.home", "."));
    try {
      cluster = vms ? new VmCluster(home, report.resolve("vms").toAbsolutePath(), tarball(home, options.tarball), VMS_NET)
          : new LocalCluster(home, nodes, report.resolve("cluster"));
    } catch (IOException e) {
      err.println("kaon chaos: " + e.getMessage());
      return KaonCli.ENVIRONMENT;
    }
    List<String> verdicts = new ArrayList<>();
    int code = 0;
    // An aborted run (Ctrl-C) leaves nothing behind: the nodes run in the background otherwise.
    ChaosCluster started = cluster;
    Thread abort = new Thread(() -> {
      try {
        started.shutDown();
      } catch (IOException | InterruptedException e) {
        err.println("kaon chaos: stopping the cluster: " + e.getMessage());
      }
    }, "chaos-abort");
    Runtime.getRuntime().addShutdownHook(abort);
    try {
      for (Scenario scenario : scenarios) {
        Path dir = scenarios.size() == 1 ? report : report.resolve(scenario.slug());
        out.printf("chaos run \"%s\": seed %d, report in %s%n", scenario.name(), seed, dir.toAbsolutePath());
        int result = new ChaosRun(scenario, new ChaosRun.Options(seed, dir, repeat, options.freshBaseline), cluster,
            BaselineCache.forThisBuild(), out).run();
        verdicts.add((result == 0 ? "passed: " : "FAILED: ") + scenario.name() + " (" + dir.resolve("report.md") + ")");
        code = Math.max(code, result);
      }
    } catch (IOException e) {
      err.println("kaon chaos: " + (e instanceof java.nio.file.FileSystemException f && f.getReason() == null
          ? "cannot write or read " + f.getFile() + " (" + e.getClass().getSimpleName() + ")" : e.getMessage()));
      return KaonCli.ENVIRONMENT;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return KaonCli.ENVIRONMENT;
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(abort);
      } catch (IllegalStateException shuttingDown) {
        // aborted: the hook stops the cluster, and this does too; both are idempotent
      }
      try {
        cluster.shutDown();
      } catch (IOException | InterruptedException e) {
        err.println("kaon chaos: stopping the cluster: " + e.getMessage());
      }
    }
    if (scenarios.size() > 1) {
      verdicts.forEach(out::println);
    }
    return code;
  }

  /** The tarball the VMs install: the one given, else the newest the build made. */
  private static Path tarball(Path home, Path given) throws IOException {
    if (given != null) {
      return given.toAbsolutePath();
    }
    try (var found = java.nio.file.Files.newDirectoryStream(home.resolve("deploy/target"), "kaon-*.tar.gz")) {
      Path newest = null;
      for (Path p : found) {
        if (newest == null || java.nio.file.Files.getLastModifiedTime(p).compareTo(java.nio.file.Files.getLastModifiedTime(newest)) > 0) {
          newest = p;
        }
      }
      if (newest != null) {
        return newest.toAbsolutePath();
      }
    } catch (java.nio.file.NoSuchFileException e) {
      // reported below
    }
    throw new java.nio.file.NoSuchFileException(home.resolve("deploy/target").toString(), null,
        "no kaon-*.tar.gz to install on the VMs: build it (mvn -B package -DskipTests) or give --tarball");
  }

  @Command(name = "run", mixinStandardHelpOptions = true,
      description = "Start a local cluster, run a scenario's job under its faults, and check the history.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:every invariant held and every fault was applied",
          "1:an invariant was violated, or the run had a problem (see its report)", "2:invalid command line or scenario",
          "3:the cluster could not be started (see the report directory's cluster/commands.log)"})
  static final class Run implements Callable<Integer> {

    @Spec CommandSpec command;

    @Parameters(paramLabel = "SCENARIO", arity = "1..*",
        description = "The scenario (YAML; see deploy/chaos/); several run one after another on the same cluster.")
    List<Path> files;

    @Mixin
    RunOptions options;

    @Override
    public Integer call() {
      List<Scenario> scenarios = new ArrayList<>();
      List<String> mistakes = new ArrayList<>();
      for (Path file : files) {
        try {
          scenarios.add(ScenarioFile.read(file));
        } catch (ScenarioFile.InvalidScenarioException e) {
          mistakes.add(e.getMessage());
        }
      }
      if (!mistakes.isEmpty()) {
        mistakes.forEach(command.commandLine().getErr()::println);
        return 2;
      }
      return play(command, scenarios, options, false);
    }
  }

  @Command(name = "random", mixinStandardHelpOptions = true,
      description = "Jobs back to back on a local cluster while random faults strike, then check the history.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:every invariant held and every fault was applied",
          "1:an invariant was violated, or the run had a problem (see its report)", "2:invalid command line",
          "3:the cluster could not be started (see the report directory's cluster/commands.log)"})
  static final class RandomFaults implements Callable<Integer> {

    @Spec CommandSpec command;

    @Option(names = "--faults", paramLabel = "KINDS", split = ",", defaultValue = "kill,hang,cassandra",
        description = "The faults to draw from, each kind as likely: kill, stop, hang, cassandra-stop, cassandra-kill,"
            + " cassandra (either); inside the runtime chunk-corrupt, chunk-drop, chunk-delay, slow-rank, poison (NaN or"
            + " 1e30), checkpoint-write-failure; on --cluster vms partition, packet-loss, bandwidth, latency"
            + " (default: ${DEFAULT-VALUE}).")
    List<String> kinds;

    /** How long a network fault lasts before it is healed. */
    private static final Scenario.Span NETWORK_FOR = new Scenario.Span(Duration.ofSeconds(5), Duration.ofSeconds(20));

    /** How long a poison waits for its rank's next step. */
    private static final Scenario.Span POISON_WAIT = new Scenario.Span(Duration.ofMinutes(1), Duration.ofMinutes(1));

    @Option(names = "--every", paramLabel = "SPAN", defaultValue = "20-40s",
        description = "Time between faults, drawn from the range (default: ${DEFAULT-VALUE}).")
    String every;

    @Option(names = "--for", paramLabel = "TIME", defaultValue = "10m", description = "How long faults strike (default: ${DEFAULT-VALUE}).")
    String length;

    @Option(names = "--nodes", paramLabel = "N", defaultValue = "3", description = "Nodes of the cluster (default: ${DEFAULT-VALUE}).")
    int nodes;

    @Option(names = "--job", paramLabel = "FILE",
        description = "The job to train (a spec file as kaon submit --file takes; default: fashion-mnist-mlp, 1 to N"
            + " workers, 5 epochs, a checkpoint every 100 steps).")
    Path job;

    @Mixin
    RunOptions options;

    @Override
    public Integer call() {
      PrintWriter err = command.commandLine().getErr();
      List<String> mistakes = new ArrayList<>();
      Scenario.Span span = ScenarioFile.span(every).orElse(null);
      if (span == null) {
        mistakes.add("--every: expected a time (30s) or a range (20-40s), got \"" + every + "\"");
      }
      Duration window = ScenarioFile.duration(length).orElse(null);
      if (window == null) {
        mistakes.add("--for: expected a time such as 10m, got \"" + length + "\"");
      }
      if (nodes < 1 || nodes > 64) {
        mistakes.add("--nodes: expected 1 to 64, got " + nodes);
      }
      Scenario.Span restart = new Scenario.Span(Duration.ZERO, Duration.ofSeconds(6));
      List<Scenario.Fault> faults = new ArrayList<>();
      for (String kind : kinds) {
        switch (kind.strip()) {
          // Two entries per kind listed (cassandra: one stop, one kill), so that each is as likely.
          case "kill" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Kill(new Scenario.Target.Any(), restart)));
          case "stop" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Stop(new Scenario.Target.Any(), restart)));
          case "hang" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Hang(new Scenario.Target.Any(),
              new Scenario.Span(Duration.ofSeconds(2), Duration.ofSeconds(10)))));
          case "cassandra-stop", "cassandra-kill", "cassandra" -> {
            Scenario.Span outage = new Scenario.Span(Duration.ofSeconds(5), Duration.ofSeconds(25));
            boolean both = kind.strip().equals("cassandra");
            if (!kind.strip().equals("cassandra-kill")) {
              faults.addAll(Collections.nCopies(both ? 1 : 2, new Scenario.Fault.CassandraDown(false, outage)));
            }
            if (!kind.strip().equals("cassandra-stop")) {
              faults.addAll(Collections.nCopies(both ? 1 : 2, new Scenario.Fault.CassandraDown(true, outage)));
            }
          }
          // Inside the runtime: each armed for a few seconds on a rank drawn from the job's first ones.
          case "chunk-corrupt", "chunk-drop" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Runtime(
              kind.strip().equals("chunk-drop") ? RuntimeFaults.Kind.CHUNK_DROP : RuntimeFaults.Kind.CHUNK_CORRUPT, -1, 1,
              Duration.ZERO, 1, new Scenario.Span(Duration.ofSeconds(30), Duration.ofSeconds(30)))));
          case "chunk-delay" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Runtime(RuntimeFaults.Kind.CHUNK_DELAY,
              -1, 0.1, Duration.ofMillis(20), 0, new Scenario.Span(Duration.ofSeconds(2), Duration.ofSeconds(10)))));
          case "slow-rank" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Runtime(RuntimeFaults.Kind.SLOW_RANK,
              -1, 1, Duration.ofMillis(50), 0, new Scenario.Span(Duration.ofSeconds(2), Duration.ofSeconds(10)))));
          case "poison" -> {
            faults.add(new Scenario.Fault.Runtime(RuntimeFaults.Kind.POISON_NAN, -1, 1, Duration.ZERO, 0, POISON_WAIT));
            faults.add(new Scenario.Fault.Runtime(RuntimeFaults.Kind.POISON_LARGE, -1, 1, Duration.ZERO, 0, POISON_WAIT));
          }
          case "checkpoint-write-failure" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Runtime(
              RuntimeFaults.Kind.CHECKPOINT_WRITE, -1, 1, Duration.ZERO, 0,
              new Scenario.Span(Duration.ofSeconds(2), Duration.ofSeconds(15)))));
          // On the namespace VMs only (play refuses them elsewhere); each healed after 5-20 s.
          case "partition" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Network(Scenario.NetworkKind.PARTITION,
              new Scenario.Target.Any(), false, 0, "", Duration.ZERO, Duration.ZERO, NETWORK_FOR)));
          case "packet-loss" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Network(Scenario.NetworkKind.LOSS,
              new Scenario.Target.Any(), false, 5, "", Duration.ZERO, Duration.ZERO, NETWORK_FOR)));
          case "bandwidth" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Network(Scenario.NetworkKind.BANDWIDTH,
              new Scenario.Target.Any(), false, 0, "20mbit", Duration.ZERO, Duration.ZERO, NETWORK_FOR)));
          case "latency" -> faults.addAll(Collections.nCopies(2, new Scenario.Fault.Network(Scenario.NetworkKind.DELAY,
              new Scenario.Target.Any(), false, 0, "", Duration.ofMillis(30), Duration.ofMillis(10), NETWORK_FOR)));
          default -> mistakes.add("--faults: unknown fault \"" + kind + "\"; the faults are kill, stop, hang,"
              + " cassandra-stop, cassandra-kill, cassandra, chunk-corrupt, chunk-drop, chunk-delay, slow-rank, poison,"
              + " checkpoint-write-failure and, on --cluster vms, partition, packet-loss, bandwidth and latency");
        }
      }
      JobSpecification spec = JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1)
          .setMaxWorkers(nodes).setEpochs(5).setCheckpointEverySteps(100).build();
      if (job != null) {
        try {
          spec = JobSpecFile.read(job).toSpecification();
        } catch (JobSpecFile.InvalidSpecException e) {
          mistakes.add(e.getMessage());
        }
      }
      if (!mistakes.isEmpty()) {
        mistakes.forEach(m -> err.println("kaon chaos random: " + m));
        return 2;
      }
      Scenario scenario = new Scenario("random faults", nodes, spec, new Scenario.Expectation(true, "", 0.015),
          window.plus(Duration.ofMinutes(20)), false, List.of(new Scenario.FaultRule(0,
              new Scenario.Trigger.Every(span, Duration.ZERO, window), List.copyOf(faults))));
      return play(command, List.of(scenario), options, true);
    }
  }

  @Command(name = "check", mixinStandardHelpOptions = true,
      description = "Judge a history (history.jsonl of kaon chaos run, kaon chaos random or bench/soak) and write report.md and"
          + " timeline.svg.",
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:every invariant held", "1:an invariant was violated", "2:invalid command line",
          "3:the history cannot be read"})
  static final class Check implements Callable<Integer> {

    @Spec CommandSpec command;

    @Parameters(paramLabel = "HISTORY", description = "The history file (JSON lines).")
    Path history;

    @Option(names = "--report", paramLabel = "DIR", description = "Where report.md and timeline.svg go (default: beside HISTORY).")
    Path report;

    @Override
    public Integer call() throws IOException {
      PrintWriter out = command.commandLine().getOut();
      List<Observation> observed;
      try {
        observed = HistoryFile.read(history);
      } catch (NoSuchFileException e) {
        command.commandLine().getErr().println("kaon chaos check: " + history + ": no such file");
        return KaonCli.ENVIRONMENT;
      } catch (IOException e) {
        command.commandLine().getErr().println("kaon chaos check: " + e.getMessage());
        return KaonCli.ENVIRONMENT;
      }
      Verdict verdict = new HistoryChecker(HistoryChecker.Rules.standard()).check(observed);
      Path dir = report != null ? report : history.toAbsolutePath().getParent();
      Path written = ChaosReport.write(dir, "Chaos run: " + history.getFileName(), observed, verdict);
      ChaosReport.summary(observed, verdict).forEach(out::println);
      out.println("report: " + written);
      return verdict.held() ? 0 : KaonCli.JOB_FAILED;
    }
  }
}
