package kaon.multijvm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Kaon JVM ({@code kaon.runtime.cli.KaonCli} with the given arguments), started with this
 * test's classpath. Every line it prints goes to {@code target/node-logs/<name>.log} (kept for CI)
 * and is kept here, so that tests wait on what the process says, never on the clock.
 */
final class KaonProcess implements AutoCloseable {

  static final Path LOGS = Path.of("target", "node-logs");

  private final String name;
  private final Process process;
  private final List<String> lines = new ArrayList<>();
  private final Thread reader;

  private KaonProcess(String name, Process process, PrintWriter log) {
    this.name = name;
    this.process = process;
    this.reader = new Thread(() -> pump(log), "output-" + name);
    reader.setDaemon(true);
    reader.start();
  }

  /**
   * Starts {@code kaon <args>} alone, on journal keyspaces of its own (see {@link #isolated});
   * library logs at INFO so that tests can follow recovery.
   */
  static KaonProcess start(String name, String... args) throws IOException {
    return start(name, isolated(java.util.Map.of()), args);
  }

  /** Starts {@code kaon <args>} with extra environment variables. */
  static KaonProcess start(String name, java.util.Map<String, String> env, String... args) throws IOException {
    Files.createDirectories(LOGS);
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dkaon.home=" + System.getProperty("kaon.home"),
        "-Dai.djl.offline=true",
        "-Dai.djl.pytorch.num_interop_threads=1",
        "-XX:MaxDirectMemorySize=1g",
        "-Xmx1g",
        "-cp", System.getProperty("java.class.path"),
        "kaon.runtime.cli.KaonCli"));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().put("OPT_OUT_TRACKING", "true");
    builder.environment().put("OMP_WAIT_POLICY", "PASSIVE");
    builder.environment().put("MALLOC_ARENA_MAX", "2");
    builder.environment().put("KAON_LOG_LEVEL", "INFO");
    builder.environment().putAll(env);
    PrintWriter log = new PrintWriter(Files.newBufferedWriter(LOGS.resolve(name + ".log")), true);
    log.println("$ kaon " + String.join(" ", args));
    return new KaonProcess(name, builder.start(), log);
  }

  private void pump(PrintWriter log) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        log.println(line);
        synchronized (lines) {
          lines.add(line);
          lines.notifyAll();
        }
      }
    } catch (IOException e) {
      log.println("[harness] output ended: " + e.getMessage());
    } finally {
      log.close();
      synchronized (lines) {
        lines.notifyAll();
      }
    }
  }

  /** Keyspaces handed out by {@link #isolated}; dropped when this JVM exits. */
  private static final java.util.Set<String> KEYSPACES = java.util.concurrent.ConcurrentHashMap.newKeySet();

  static {
    // Otherwise they stay in the local Cassandra for good. Runs of the suite on one machine piled
    // up ~300 of them (some 1,500 tables), and the local node (512 MB heap) died under them.
    Runtime.getRuntime().addShutdownHook(new Thread(() -> kaon.runtime.CassandraConnection.dropKeyspaces(
        com.typesafe.config.ConfigFactory.load(), KEYSPACES, java.time.Duration.ofSeconds(20), System.err::println), "kaon-test-keyspaces"));
  }

  /**
   * Environment for the nodes of one test cluster: journal keyspaces of its own, so that jobs a
   * killed cluster left remembered never resume in another test's cluster (on a shared Cassandra
   * that is what they would rightly do).
   */
  static java.util.Map<String, String> isolated(java.util.Map<String, String> env) {
    String suffix = java.util.UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    KEYSPACES.add("kaon_journal_" + suffix);
    KEYSPACES.add("kaon_snapshot_" + suffix);
    java.util.Map<String, String> all = new java.util.HashMap<>(env);
    all.put("KAON_JOURNAL_KEYSPACE", "kaon_journal_" + suffix);
    all.put("KAON_SNAPSHOT_KEYSPACE", "kaon_snapshot_" + suffix);
    return all;
  }

  /**
   * The lines of the named processes' logs that tell a job's story (generations, checkpoints
   * resumed, failures), for assertion messages: CI keeps the test report, not always the logs.
   */
  static String summary(String... names) throws IOException {
    Pattern story = Pattern.compile("generation \\d+|resumes at|ended:|failed|ERROR|Degraded|no device");
    StringBuilder out = new StringBuilder();
    for (String name : names) {
      out.append("\n--- ").append(name);
      Path log = LOGS.resolve(name + ".log");
      if (Files.exists(log)) {
        Files.readAllLines(log).stream().filter(l -> story.matcher(l).find()).limit(40)
            .forEach(l -> out.append("\n").append(l));
      }
    }
    return out.toString();
  }

  private static final java.util.Map<Integer, Double> FAULT_FREE = new java.util.HashMap<>();

  /**
   * Test accuracy of the fault-free run the failure tests compare with: the MLP on 2 workers for
   * {@code epochs} epochs, checkpoints every 50 steps, as {@code kaon train} (one JVM). Trained once
   * per test JVM and epoch count: the failure tests run this same job.
   */
  static synchronized double faultFreeAccuracy(int epochs) throws Exception {
    Double known = FAULT_FREE.get(epochs);
    if (known == null) {
      try (KaonProcess run = start("fault-free-reference-" + epochs, "train", "--workers", "2", "--epochs",
          Integer.toString(epochs), "--checkpoint-every", "50")) {
        if (run.awaitExit(Duration.ofMinutes(4)) != 0) {
          throw new AssertionError("the fault-free run failed; see " + LOGS.resolve("fault-free-reference-" + epochs + ".log"));
        }
        String line = run.lines().stream().filter(l -> l.startsWith("Test accuracy: ")).findFirst().orElseThrow();
        Matcher m = Pattern.compile("^Test accuracy: (0\\.\\d+)").matcher(line);
        if (!m.find()) {
          throw new AssertionError("no accuracy in: " + line);
        }
        known = Double.parseDouble(m.group(1));
        FAULT_FREE.put(epochs, known);
      }
    }
    return known;
  }

  /**
   * Every epoch of a finished job, in its final status, trained on each of its samples exactly
   * once (the ledger the ranks kept through every re-formation matched the epoch's plan).
   */
  static void assertEachSampleUsedOnce(kaon.protocol.v1.JobEvent last, int epochs) {
    var results = last.getStatus().getEpochsList();
    if (results.size() != epochs) {
      throw new AssertionError("expected " + epochs + " epochs, the job recorded " + results.size() + ": " + last);
    }
    for (var epoch : results) {
      if (!epoch.getEachSampleOnce() || epoch.getSamples() <= 0) {
        throw new AssertionError("epoch " + epoch.getEpoch() + " did not use each sample exactly once: " + epoch);
      }
    }
  }

  /** A free TCP port on loopback (free when asked; the process binds it soon after). */
  static int freePort() throws IOException {
    // Not a port the kernel picks for a bind to port 0: nodes bind their Artery, liveness and API
    // ports that way, and one took the API port handed out here to another node that had not
    // bound it yet (BelowMinimumTest). Below the ephemeral range no bind to port 0 lands, and no
    // port is handed out twice in this JVM.
    int ceiling = ephemeralFloor();
    int floor = Math.max(1024, ceiling - 12_000);
    java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
    for (int attempt = 0; attempt < 1000; attempt++) {
      int port = floor + random.nextInt(ceiling - floor);
      if (!HANDED_OUT.add(port)) {
        continue;
      }
      try (java.net.ServerSocket socket = new java.net.ServerSocket(port, 1, java.net.InetAddress.getLoopbackAddress())) {
        return socket.getLocalPort();
      } catch (IOException inUse) {
        // another process's: try the next
      }
    }
    throw new IOException("no free port in " + floor + "-" + (ceiling - 1));
  }

  private static final java.util.Set<Integer> HANDED_OUT = java.util.concurrent.ConcurrentHashMap.newKeySet();

  /** The lowest port of the kernel's ephemeral range (32768 unless configured otherwise). */
  private static int ephemeralFloor() {
    try {
      String range = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).trim();
      int low = Integer.parseInt(range.split("\\s+")[0]);
      return low > 4096 ? low : 32768;
    } catch (IOException | RuntimeException e) {
      return 32768;
    }
  }

  /** Submits job {@code jobId} (also its request id) with {@code spec} through the API. */
  static void submit(kaon.protocol.v1.JobServiceClient jobs, String bearer, String jobId,
      kaon.protocol.v1.JobSpecification.Builder spec) throws Exception {
    jobs.submitJob().addHeader("authorization", bearer)
        .invoke(kaon.protocol.v1.SubmitJobRequest.newBuilder().setRequestId(jobId).setSpec(spec).build())
        .toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  /** Downloads the model of job {@code jobId}, which has succeeded, to {@code file} through the API. */
  static void downloadModel(kaon.protocol.v1.JobServiceClient jobs, String bearer, String jobId, Path file,
      org.apache.pekko.actor.typed.ActorSystem<?> client) throws Exception {
    List<kaon.protocol.v1.ModelChunk> chunks = jobs.downloadModel().addHeader("authorization", bearer)
        .invoke(kaon.protocol.v1.DownloadModelRequest.newBuilder().setJobId(jobId).build())
        .runWith(org.apache.pekko.stream.javadsl.Sink.seq(), client).toCompletableFuture().get(60, TimeUnit.SECONDS);
    try (var out = Files.newOutputStream(file)) {
      for (kaon.protocol.v1.ModelChunk chunk : chunks) {
        chunk.getData().writeTo(out);
      }
    }
  }

  /** Every event of job {@code jobId} from now to its end, once it has ended. */
  static java.util.concurrent.CompletableFuture<List<kaon.protocol.v1.JobEvent>> watch(
      kaon.protocol.v1.JobServiceClient jobs, String bearer, String jobId,
      org.apache.pekko.actor.typed.ActorSystem<?> client) {
    return jobs.watchJob().addHeader("authorization", bearer)
        .invoke(kaon.protocol.v1.WatchJobRequest.newBuilder().setJobId(jobId).build())
        .runWith(org.apache.pekko.stream.javadsl.Sink.seq(), client).toCompletableFuture();
  }

  /**
   * Waits until job {@code jobId} has committed a checkpoint (it is training), asked over the API.
   *
   * @throws AssertionError if it has not within {@code timeout}
   */
  static void awaitCheckpoint(kaon.protocol.v1.JobServiceClient jobs, String bearer, String jobId, Duration timeout)
      throws Exception {
    awaitJob(jobs, bearer, jobId, kaon.protocol.v1.Job::hasLatestCheckpoint, "a checkpoint", timeout);
  }

  /**
   * Asks {@code ask} until its answer satisfies {@code until}, and returns that answer. A call
   * that fails (a coordinator moving to another node, a machine loaded far beyond its cores) is
   * asked again; the last answer or failure is in the error.
   *
   * @throws AssertionError naming {@code what} and the last answer if none does within {@code timeout}
   */
  static <T> T awaitAnswer(java.util.concurrent.Callable<java.util.concurrent.CompletionStage<T>> ask,
      java.util.function.Predicate<T> until, String what, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    Object last = "no answer";
    while (System.nanoTime() < deadline) {
      try {
        T answer = ask.call().toCompletableFuture().get(30, TimeUnit.SECONDS);
        if (until.test(answer)) {
          return answer;
        }
        last = answer;
      } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
        last = e.getCause() == null ? e : e.getCause();
      }
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
    }
    throw new AssertionError("no " + what + " within " + timeout + "; last answer: " + last);
  }

  /** Asks GetJob until the job satisfies {@code until} (see {@link #awaitAnswer}), and returns it. */
  static kaon.protocol.v1.Job awaitJob(kaon.protocol.v1.JobServiceClient jobs, String bearer, String jobId,
      java.util.function.Predicate<kaon.protocol.v1.Job> until, String what, Duration timeout) throws Exception {
    return awaitAnswer(() -> jobs.getJob().addHeader("authorization", bearer)
        .invoke(kaon.protocol.v1.GetJobRequest.newBuilder().setJobId(jobId).build()), until, what + " of job " + jobId, timeout);
  }

  /** Waits until a device of {@code node} is owned by one of the job's workers, as ListDevices says. */
  static void awaitDeviceOwned(kaon.protocol.v1.ClusterServiceClient cluster, String bearer, String node, String jobId,
      Duration timeout) throws Exception {
    awaitAnswer(() -> cluster.listDevices().addHeader("authorization", bearer)
            .invoke(kaon.protocol.v1.ListDevicesRequest.getDefaultInstance()),
        answer -> answer.getDevicesList().stream()
            .anyMatch(d -> d.getNode().equals(node) && d.getOwner().startsWith(jobId + "-worker-")),
        "device of " + node + " owned by a worker of " + jobId, timeout);
  }

  /** Asks ListMembers until the members satisfy {@code until} (see {@link #awaitAnswer}). */
  static void awaitMembers(kaon.protocol.v1.ClusterServiceClient cluster, String bearer,
      java.util.function.Predicate<List<kaon.protocol.v1.Member>> until, String what, Duration timeout) throws Exception {
    awaitAnswer(() -> cluster.listMembers().addHeader("authorization", bearer)
            .invoke(kaon.protocol.v1.ListMembersRequest.getDefaultInstance()),
        answer -> until.test(answer.getMembersList()), what, timeout);
  }

  /**
   * The one of {@code processes} whose cluster port is in {@code address} ("pekko://kaon@host:port",
   * as the API names nodes), given each process's port.
   */
  static KaonProcess byAddress(java.util.Map<Integer, KaonProcess> processesByPort, String address) {
    int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
    KaonProcess process = processesByPort.get(port);
    if (process == null) {
      throw new AssertionError(address + " is none of the started nodes " + processesByPort.keySet());
    }
    return process;
  }

  /**
   * Waits until the cluster reports {@code members} members Up, asked over its API as an operator
   * would. Pekko logs each join, but only the gateway's view says the cluster is formed.
   *
   * @throws AssertionError if it does not within {@code timeout}
   */
  static void awaitMembersUp(kaon.protocol.v1.ClusterServiceClient cluster, String bearer, int members, Duration timeout)
      throws Exception {
    awaitMembers(cluster, bearer, listed -> listed.stream().filter(m -> m.getStatus().equals("Up")).count() >= members,
        members + " members Up", timeout);
  }



  /** Every line printed so far. */
  List<String> lines() {
    synchronized (lines) {
      return List.copyOf(lines);
    }
  }

  /** Waits for the process to exit and returns its exit code. */
  int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError(name + " did not exit within " + timeout + "; see " + LOGS.resolve(name + ".log"));
    }
    reader.join(TimeUnit.SECONDS.toMillis(10));
    return process.exitValue();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** SIGKILL: no shutdown hook, no goodbye to anyone. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor();
  }

  /** SIGSTOP: the process hangs (a stuck JVM, a long GC pause, a frozen VM) until {@link #resume}. */
  void hang() throws Exception {
    signal("STOP");
  }

  /** SIGCONT after {@link #hang}. */
  void resume() throws Exception {
    signal("CONT");
  }

  private void signal(String name) throws Exception {
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
    if (kill.waitFor() != 0) {
      throw new AssertionError("kill -" + name + " " + process.pid() + " failed");
    }
  }

  /** SIGTERM: a graceful shutdown. */
  void stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      kill();
    }
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      kill();
    }
  }
}
