package kaon.runtime.chaos;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import kaon.actors.data.UserCache;

/**
 * A chaos run's cluster on this machine: N node JVMs of {@code deploy/local/cluster.sh} and a
 * Cassandra of its own ({@code deploy/cassandra/cassandra.sh}), so that its faults hit nothing
 * else. Everything lives in one directory (the nodes' logs and pids, Cassandra's data), on ports
 * chosen free when the run starts, with a token and keyspaces of its own.
 */
public final class LocalCluster implements ChaosCluster {

  private static final Pattern ADDRESS = Pattern.compile("pekko://[^@]+@127\\.0\\.0\\.1:([0-9]+)");

  private final Path home;
  private final int nodes;
  private final Path dir;
  private final int clusterBase;
  private final int apiBase;
  private final String token;
  private final String chaosToken;
  private final int cassandraPort;
  private final Map<String, String> env = new LinkedHashMap<>();
  private final List<String> logs = new ArrayList<>();

  /**
   * A cluster of {@code nodes} nodes living in {@code dir}, run from the Kaon checkout {@code home}
   * (which has {@code deploy/local} and {@code deploy/cassandra}).
   */
  public LocalCluster(Path home, int nodes, Path dir) throws IOException {
    for (String script : List.of("deploy/local/cluster.sh", "deploy/cassandra/cassandra.sh")) {
      if (!Files.isExecutable(home.resolve(script))) {
        throw new NoSuchFileException(home.resolve(script).toString(), null,
            "a chaos run on the local cluster needs a Kaon checkout (KAON_HOME) with " + script);
      }
    }
    this.home = home;
    this.nodes = nodes;
    this.dir = dir;
    Files.createDirectories(dir);
    Random random = new SecureRandom();
    // One range for all: the cluster's ports, the API's, then Cassandra's three, none shared.
    int base = freeRange(random, 2 * nodes + 3);
    this.clusterBase = base;
    this.apiBase = base + nodes;
    List<Integer> cassandra = List.of(base + 2 * nodes, base + 2 * nodes + 1, base + 2 * nodes + 2);
    this.cassandraPort = cassandra.get(0);
    byte[] secret = new byte[16];
    random.nextBytes(secret);
    this.token = "chaos-" + HexFormat.of().formatHex(secret);
    random.nextBytes(secret);
    this.chaosToken = "chaos-admin-" + HexFormat.of().formatHex(secret);
    env.put("KAON_LOCAL_DIR", dir.resolve("nodes").toString());
    env.put("KAON_LOCAL_PORT", Integer.toString(clusterBase));
    env.put("KAON_LOCAL_API_PORT", Integer.toString(apiBase));
    env.put("KAON_TOKEN", token);
    // Faults inside the runtime (chunks, a slow rank, a poison, checkpoint writes) through each
    // node's chaos service, which takes a token of its own.
    env.put("KAON_CHAOS_RUNTIME_FAULTS", "on");
    env.put("KAON_CHAOS_TOKEN", chaosToken);
    env.put("KAON_LOG_LEVEL", "INFO");
    // The defaults, whatever the caller's environment says: the Cassandra is the run's alone, and
    // the recorder reads these.
    env.put("KAON_JOURNAL_KEYSPACE", "kaon_journal");
    env.put("KAON_SNAPSHOT_KEYSPACE", "kaon_snapshot");
    env.put("KAON_CASSANDRA_DIR", dir.resolve("cassandra").toString());
    env.put("KAON_CASSANDRA_PORT", Integer.toString(cassandraPort));
    // Resolved once for all runs, not in each run's fresh directory (it costs ~30 s).
    env.put("KAON_CASSANDRA_CLASSPATH_FILE", UserCache.kaonDir().resolve("cassandra-classpath.txt").toString());
    env.put("KAON_CASSANDRA_STORAGE_PORT", Integer.toString(cassandra.get(1)));
    env.put("KAON_CASSANDRA_JMX_PORT", Integer.toString(cassandra.get(2)));
    // External to the nodes: a node started during an outage waits for it rather than starting it.
    env.put("KAON_CASSANDRA_CONTACT_POINT", "127.0.0.1:" + cassandraPort);
    for (int k = 1; k <= nodes; k++) {
      logs.add(dir.resolve("nodes").resolve("node-" + k + ".log").toString());
    }
  }

  @Override
  public int size() {
    return nodes;
  }

  @Override
  public String apiEndpoint(int node) {
    return "127.0.0.1:" + (apiBase + node - 1);
  }

  @Override
  public String token() {
    return token;
  }

  @Override
  public String chaosToken() {
    return chaosToken;
  }

  @Override
  public HistoryRecorder.Store store() {
    // The nodes' default keyspaces: this Cassandra is the run's alone.
    return new HistoryRecorder.Store("127.0.0.1", cassandraPort, "kaon", "kaon_journal");
  }

  @Override
  public void startAll() throws IOException, InterruptedException {
    cassandraUp();
    script("deploy/local/cluster.sh", "start", Integer.toString(nodes));
  }

  @Override
  public void start(int node) throws IOException, InterruptedException {
    script("deploy/local/cluster.sh", "start", Integer.toString(nodes), Integer.toString(node));
  }

  @Override
  public boolean running(int node) {
    return pid(node).map(LocalCluster::alive).orElse(false);
  }

  @Override
  public void kill(int node) throws IOException, InterruptedException {
    signal(node, "KILL");
  }

  @Override
  public void terminate(int node) throws IOException, InterruptedException {
    signal(node, "TERM");
  }

  @Override
  public void hang(int node, boolean hang) throws IOException, InterruptedException {
    Optional<Long> pid = pid(node);
    if (pid.isPresent()) {
      exec(List.of("kill", hang ? "-STOP" : "-CONT", pid.get().toString()));
    }
  }

  @Override
  public void cassandraDown(boolean kill) throws IOException, InterruptedException {
    if (kill) {
      Path pidFile = dir.resolve("cassandra").resolve("cassandra.pid");
      long pid = Long.parseLong(Files.readString(pidFile).strip());
      exec(List.of("kill", "-KILL", Long.toString(pid)));
      waitGone(pid, 30);
    } else {
      script("deploy/cassandra/cassandra.sh", "stop");
    }
  }

  @Override
  public void cassandraUp() throws IOException, InterruptedException {
    script("deploy/cassandra/cassandra.sh", "start");
  }

  @Override
  public Optional<Integer> nodeOf(String clusterAddress) {
    Matcher m = ADDRESS.matcher(clusterAddress);
    if (!m.lookingAt()) {
      return Optional.empty();
    }
    int node = Integer.parseInt(m.group(1)) - clusterBase + 1;
    return node >= 1 && node <= nodes ? Optional.of(node) : Optional.empty();
  }

  @Override
  public List<String> logs() {
    return logs;
  }

  @Override
  public void shutDown() throws IOException, InterruptedException {
    for (int k = 1; k <= nodes; k++) {
      hang(k, false); // a hung node cannot act on SIGTERM
    }
    script("deploy/local/cluster.sh", "stop");
    for (int k = 1; k <= nodes; k++) {
      Optional<Long> pid = pid(k);
      if (pid.isPresent()) {
        waitGone(pid.get(), 60);
      }
    }
    script("deploy/cassandra/cassandra.sh", "stop");
  }

  private void signal(int node, String signal) throws IOException, InterruptedException {
    Optional<Long> pid = pid(node);
    if (pid.isEmpty() || !alive(pid.get())) {
      return;
    }
    exec(List.of("kill", "-" + signal, pid.get().toString()));
    if (signal.equals("TERM")) {
      exec(List.of("kill", "-CONT", pid.get().toString())); // a hung node acts on it only once continued
    }
    waitGone(pid.get(), signal.equals("KILL") ? 10 : 60);
  }

  private Optional<Long> pid(int node) {
    try {
      return Optional.of(Long.parseLong(Files.readString(dir.resolve("nodes").resolve("node-" + node + ".pid")).strip()));
    } catch (IOException | NumberFormatException e) {
      return Optional.empty(); // never started, or stopped (cluster.sh stop removes the file)
    }
  }

  /** A process that runs; a zombie (a killed node nobody reaped) does not. */
  static boolean alive(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("State:")) {
          String state = line.substring("State:".length()).strip();
          return !state.startsWith("Z") && !state.startsWith("X");
        }
      }
      return false;
    } catch (IOException e) {
      return false;
    }
  }

  private static void waitGone(long pid, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (alive(pid) && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
  }

  private void script(String script, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(home.resolve(script).toString()));
    command.addAll(List.of(args));
    exec(command);
  }

  /** Runs a command with the cluster's environment, its output appended to {@code commands.log}. */
  private void exec(List<String> command) throws IOException, InterruptedException {
    run(command, env, dir.resolve("commands.log"), 5);
  }

  /**
   * Runs {@code command} with {@code env} added to this process's environment, its output
   * appended to {@code log}, for at most {@code minutes}; fails if it takes longer or exits non-zero.
   */
  static void run(List<String> command, Map<String, String> env, Path log, int minutes)
      throws IOException, InterruptedException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(env);
    Process process = builder.start();
    if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
      process.destroyForcibly();
      throw new IOException(String.join(" ", command) + " did not finish in " + minutes + " min (see " + log + ")");
    }
    if (process.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " exited " + process.exitValue() + " (see " + log + ")");
    }
  }

  /**
   * The first of {@code count} consecutive ports that no one listens on now, below the kernel's
   * ephemeral range: a port in it can be taken, while Cassandra is down, as the source port of a
   * node's attempt to reach it, and Cassandra then cannot start again (a soak saw exactly that).
   */
  private static int freeRange(Random random, int count) throws IOException {
    int least = 20_000;
    int most = ephemeralPortsFrom() - 1;
    if (most - least < 1_000) {
      throw new IOException("the kernel's ephemeral ports start at " + (most + 1)
          + "; a chaos run needs ports 20000-" + (least + 1_000) + " outside them (net.ipv4.ip_local_port_range)");
    }
    for (int attempt = 0; attempt < 100; attempt++) {
      int base = least + random.nextInt(most - least - count);
      if (allFree(base, count)) {
        return base;
      }
    }
    throw new IOException("found no " + count + " free ports in " + least + "-" + most);
  }

  /** The first port the kernel hands out as a source port (32768 unless configured otherwise). */
  private static int ephemeralPortsFrom() {
    try {
      // Not Files.readString: it sizes its read by the file's size, and a /proc file's is 0 (it read "3").
      return Integer.parseInt(Files.readAllLines(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).get(0).strip()
          .split("\\s+")[0]);
    } catch (IOException | RuntimeException e) {
      return 32_768;
    }
  }

  private static boolean allFree(int base, int count) {
    for (int port = base; port < base + count; port++) {
      try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
        socket.setReuseAddress(true);
      } catch (IOException e) {
        return false;
      }
    }
    return true;
  }
}
