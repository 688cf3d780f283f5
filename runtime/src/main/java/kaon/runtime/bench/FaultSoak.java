package kaon.runtime.bench;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.runtime.chaos.ChaosReport;
import kaon.runtime.chaos.HistoryChecker;
import kaon.runtime.chaos.HistoryFile;
import kaon.runtime.chaos.HistoryRecorder;
import kaon.runtime.chaos.Invariant;
import kaon.runtime.chaos.Observation;
import kaon.runtime.chaos.Verdict;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;

/**
 * A random fault schedule against a local cluster of {@code deploy/local/cluster.sh}, as issue 9
 * asks before fault handling is called done: a fault-free job first (the baseline each job's
 * accuracy is held to), then jobs back to back while, every 8-20 s, a random fault strikes: a node
 * SIGKILLed (any node, the first included) and started again with {@code cluster.sh start}, a node
 * hung (SIGSTOP) for 2-10 s, or Cassandra stopped (SIGTERM or SIGKILL) for 5-25 s.
 *
 * <p>Everything it does and sees goes into a history ({@code history.jsonl}, see {@link
 * HistoryRecorder}) that {@link HistoryChecker} judges afterwards against every {@link Invariant};
 * {@code report.md} beside it has the verdict, each fault's effect and the resume times. The
 * report directory is {@code $KAON_SOAK_REPORT}, or {@code soak-report} under the cluster's.
 *
 * <p>Usage (through {@code bench/random-faults}): {@code [minutes] [seed]}; the cluster's
 * directory, ports, token and keyspaces come from the environment the script sets.
 */
public final class FaultSoak {

  private static final PrintStream OUT = System.out;
  private final Path home = Path.of(System.getProperty("kaon.home"));
  private final Random random;
  private final int apiBase = Integer.parseInt(System.getenv("KAON_LOCAL_API_PORT"));
  private final String bearer = "Bearer " + System.getenv("KAON_TOKEN");
  private final int epochs = Integer.getInteger("soak.epochs", 25);
  private final ActorSystem<Void> client;
  private final List<JobServiceClient> jobs = new ArrayList<>();
  private final List<ClusterServiceClient> clusters = new ArrayList<>();
  // Jobs by id with their last phase, written by both threads: the run's and the sampler's.
  private final Map<String, JobPhase> submitted = new ConcurrentHashMap<>();
  private volatile String latest;
  // The sampler watches the jobs and the store every second on its own thread, so that nothing is
  // missed while the run's thread sleeps through a fault (a hang, a restart): a checkpoint lives
  // only a few seconds before retention deletes it, and one a generation loaded must be read back.
  private final ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "soak-sampler");
    t.setDaemon(true);
    return t;
  });
  private final Map<String, Integer> faults = new LinkedHashMap<>();
  private final List<String> problems = new ArrayList<>();
  private final Path reportDir;
  private final HistoryFile history;
  private final HistoryRecorder recorder;
  private int faultCount;
  private Job baseline;

  private FaultSoak(long seed) throws IOException {
    this.random = new Random(seed);
    this.client = ActorSystem.create(Behaviors.empty(), "soak-client",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING").withFallback(ConfigFactory.load()));
    for (int k = 0; k < 3; k++) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiBase + k, client).withTls(false)
          .withDeadline(Duration.ofSeconds(20));
      jobs.add(JobServiceClient.create(settings, client));
      clusters.add(ClusterServiceClient.create(settings, client));
    }
    String dir = System.getenv("KAON_SOAK_REPORT");
    reportDir = dir != null ? Path.of(dir) : localDir().resolve("soak-report");
    Files.createDirectories(reportDir);
    history = HistoryFile.create(reportDir.resolve("history.jsonl"));
    int port = Integer.parseInt(System.getenv().getOrDefault("KAON_CASSANDRA_PORT", "9042"));
    recorder = new HistoryRecorder(history, new HistoryRecorder.Store("127.0.0.1", port,
        System.getenv().getOrDefault("KAON_CHECKPOINT_KEYSPACE", "kaon"), System.getenv("KAON_JOURNAL_KEYSPACE")),
        System::currentTimeMillis);
  }

  public static void main(String[] args) throws Exception {
    int minutes = args.length > 0 ? Integer.parseInt(args[0]) : 30;
    long seed = args.length > 1 ? Long.parseLong(args[1]) : System.currentTimeMillis();
    OUT.printf("random faults for %d min, seed %d%n", minutes, seed);
    FaultSoak soak = new FaultSoak(seed);
    int code;
    try {
      code = soak.run(Duration.ofMinutes(minutes), seed);
    } finally {
      soak.recorder.close();
      soak.history.close();
      soak.client.terminate();
    }
    System.exit(code);
  }

  private int run(Duration length, long seed) throws Exception {
    clusterSh("start", "3");
    sampler.scheduleWithFixedDelay(this::sample, 1, 1, TimeUnit.SECONDS);
    runBaseline();
    long end = System.nanoTime() + length.toNanos();
    submitNext();
    while (System.nanoTime() < end) {
      long pause = 8_000 + random.nextInt(12_000);
      waitWatching(pause, true);
      strike();
    }
    OUT.println("schedule over; bringing every node and Cassandra back, then waiting for the jobs to end");
    cassandra("start");
    clusterSh("start", "3");
    long grace = System.nanoTime() + Duration.ofMinutes(15).toNanos();
    while (System.nanoTime() < grace && submitted.values().stream().anyMatch(p -> !ended(p))) {
      waitWatching(5_000, false);
    }
    sampler.shutdown();
    sampler.awaitTermination(1, TimeUnit.MINUTES);
    return verdict(length, seed);
  }

  /** The same job with no faults, for the accuracy every soak job is held to. */
  private void runBaseline() throws Exception {
    String jobId = submit("soak-baseline-" + UUID.randomUUID().toString().substring(0, 6), false);
    while (!ended(submitted.get(jobId))) {
      waitWatching(2_000, false);
    }
    baseline = anyNode(c -> c.getJob().addHeader("authorization", bearer)
        .invoke(GetJobRequest.newBuilder().setJobId(jobId).build()), 25);
    submitted.remove(jobId);
    if (baseline == null || baseline.getPhase() != JobPhase.SUCCEEDED) {
      throw new IllegalStateException("the fault-free baseline job did not succeed: " + baseline);
    }
    OUT.printf(Locale.ROOT, "baseline: test accuracy %.4f without faults%n", baseline.getTestAccuracy());
  }

  /** Waits {@code millis} while the sampler watches; {@code more}: submits the next job when the last ended. */
  private void waitWatching(long millis, boolean more) throws Exception {
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    while (System.nanoTime() < until) {
      if (more && ended(submitted.get(latest))) {
        submitNext();
      }
      Thread.sleep(500);
    }
  }

  /** One look, on the sampler's thread: every running job through the API, then the store. */
  private void sample() {
    try {
      for (Map.Entry<String, JobPhase> e : submitted.entrySet()) {
        if (!ended(e.getValue())) {
          observe(e.getKey());
        }
      }
      recorder.pollStore();
    } catch (RuntimeException e) {
      // A look that failed is retried a second later; the history shows the gap.
      OUT.println("sampler: " + e);
    }
  }

  private void observe(String jobId) {
    // A short wait per node: a hung node must not stall the sampler for long.
    Job job = anyNode(c -> c.getJob().addHeader("authorization", bearer)
        .invoke(GetJobRequest.newBuilder().setJobId(jobId).build()), 3);
    if (job == null) {
      return; // no node answered now (faults); the history shows the silence
    }
    recorder.observe(job);
    submitted.replace(jobId, job.getPhase()); // not put: the baseline, once removed, stays out
    if (ended(job.getPhase())) {
      OUT.printf("%s job %s %s: %s%n", Instant.now(), jobId, job.getPhase(),
          job.getPhase() == JobPhase.SUCCEEDED ? "test accuracy " + job.getTestAccuracy() + ", "
              + job.getGenerationsCount() + " generations" : job.getMessage());
      if (baseline != null && !jobId.equals(baseline.getJobId())) {
        int worldSize = baseline.getGenerationsList().stream().mapToInt(g -> g.getWorldSize()).max().orElse(0);
        recorder.record(new Observation.Baseline(System.currentTimeMillis(), jobId, baseline.getTestAccuracy(),
            baseline.getDigest(), worldSize));
      }
    }
  }

  private void submitNext() {
    submit("soak-" + (submitted.size() + 1) + "-" + UUID.randomUUID().toString().substring(0, 6), true);
  }

  private String submit(String jobId, boolean record) {
    SubmitJobRequest request = SubmitJobRequest.newBuilder().setRequestId(jobId)
        .setSpec(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(3)
            .setEpochs(epochs).setCheckpointEverySteps(100))
        .build();
    submitted.put(jobId, JobPhase.JOB_PHASE_UNSPECIFIED);
    latest = jobId;
    long sentAt = System.currentTimeMillis(); // before the job can form its first generation
    // Idempotent: a submission that reaches a node about to die is simply sent again.
    for (int attempt = 0; attempt < 60; attempt++) {
      Job accepted = anyNode(c -> c.submitJob().addHeader("authorization", bearer).invoke(request), 25);
      if (accepted != null) {
        OUT.printf("%s submitted %s%n", Instant.now(), jobId);
        // The baseline is not one of the jobs judged (no fault strikes it): only its result goes
        // into the history, as each judged job's Baseline.
        if (record) {
          JobSpecification spec = accepted.getSpec();
          recorder.record(new Observation.JobSubmitted(sentAt, jobId, spec.getEpochs(),
              spec.getMaxSteps(), spec.getGlobalBatch(), spec.getMinWorkers(), spec.getMaxWorkers(), false, ""));
        }
        return jobId;
      }
      sleep(2000);
    }
    problems.add("job " + jobId + " could not be submitted for 2 min");
    return jobId;
  }

  // ------------------------------------------------------------------ faults

  private void strike() throws Exception {
    // As a supervisor would (systemd's Restart=on-failure): a node that exited, say because the
    // cluster downed it after a hang, is started again before the next fault.
    clusterSh("start", "3");
    int kind = random.nextInt(10);
    int node = 1 + random.nextInt(3);
    if (kind < 4) {
      int fault = fault("kill", "node " + node, "SIGKILL, started again");
      clusterSh("kill", Integer.toString(node));
      sleep(random.nextInt(6000));
      clusterSh("start", "3");
      undone(fault);
    } else if (kind < 7) {
      int seconds = 2 + random.nextInt(9);
      int fault = fault("hang", "node " + node, "SIGSTOP for " + seconds + " s");
      String pid = Files.readString(localDir().resolve("node-" + node + ".pid")).trim();
      exec("kill", "-STOP", pid);
      // Asleep, not watching: a call to the hung node would stretch the hang by its deadline.
      sleep(seconds * 1000L);
      exec("kill", "-CONT", pid);
      undone(fault);
    } else {
      int seconds = 5 + random.nextInt(21);
      boolean kill = random.nextBoolean();
      int fault = fault(kill ? "cassandra-kill" : "cassandra-stop", "cassandra", "for " + seconds + " s");
      if (kill) {
        String pid = Files.readString(cassandraDir().resolve("cassandra.pid")).trim();
        exec("kill", "-KILL", pid);
      } else {
        cassandra("stop");
      }
      sleep(seconds * 1000L);
      cassandra("start");
      undone(fault);
    }
  }

  private int fault(String kind, String target, String detail) {
    OUT.printf("%s fault: %s %s, %s%n", Instant.now(), kind, target, detail);
    faults.merge(kind, 1, Integer::sum);
    recorder.record(new Observation.FaultStarted(System.currentTimeMillis(), ++faultCount, kind, target, detail));
    return faultCount;
  }

  private void undone(int fault) {
    recorder.record(new Observation.FaultEnded(System.currentTimeMillis(), fault));
  }

  // ------------------------------------------------------------------ verdict

  private int verdict(Duration length, long seed) throws Exception {
    recorder.finish();
    recorder.record(clusterViews());
    List<Observation> observed = history.observations();
    Verdict verdict = new HistoryChecker(HistoryChecker.Rules.standard()).check(observed);
    String title = String.format(Locale.ROOT, "Random-fault soak: %d min, seed %d, %d faults", length.toMinutes(), seed,
        faultCount);
    Path report = ChaosReport.write(reportDir, title, observed, verdict);
    OUT.println("faults: " + faults);
    OUT.printf(Locale.ROOT, "jobs: %d submitted, %d succeeded%n", submitted.size(),
        submitted.values().stream().filter(p -> p == JobPhase.SUCCEEDED).count());
    ChaosReport.summary(observed, verdict).forEach(OUT::println);
    problems.forEach(p -> OUT.println("PROBLEM: " + p));
    OUT.println("report: " + report + ", history: " + reportDir.resolve("history.jsonl"));
    return verdict.held() && problems.isEmpty() ? 0 : 1;
  }

  private Observation.ClusterViews clusterViews() throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    List<List<String>> views = new ArrayList<>();
    while (System.nanoTime() < deadline) {
      // As a supervisor would: a node the cluster downed after the last hang exited (code 4) and is
      // started again, as before every fault.
      clusterSh("start", "3");
      views.clear();
      for (ClusterServiceClient c : clusters) {
        Set<String> up = new TreeSet<>();
        try {
          c.listMembers().addHeader("authorization", bearer).invoke(ListMembersRequest.getDefaultInstance())
              .toCompletableFuture().get(20, TimeUnit.SECONDS).getMembersList().stream()
              .filter(m -> m.getStatus().equals("Up")).forEach(m -> up.add(m.getAddress()));
        } catch (Exception e) {
          up.add("unreachable");
        }
        views.add(List.copyOf(up));
      }
      if (views.stream().allMatch(v -> v.size() == 3 && v.equals(views.get(0)))) {
        break;
      }
      Thread.sleep(2000);
    }
    return new Observation.ClusterViews(System.currentTimeMillis(), 3, List.copyOf(views));
  }

  // ------------------------------------------------------------------ plumbing

  private <T> T anyNode(java.util.function.Function<JobServiceClient, java.util.concurrent.CompletionStage<T>> call,
      int seconds) {
    List<Integer> order = new ArrayList<>(List.of(0, 1, 2));
    // Not the seeded random: the sampler's thread calls too, and the fault schedule must repeat.
    java.util.Collections.shuffle(order, java.util.concurrent.ThreadLocalRandom.current());
    for (int k : order) {
      try {
        return call.apply(jobs.get(k)).toCompletableFuture().get(seconds, TimeUnit.SECONDS);
      } catch (Exception e) {
        // that node is down, hung or cannot answer now: try another
      }
    }
    return null;
  }

  private static boolean ended(JobPhase phase) {
    return phase == JobPhase.SUCCEEDED || phase == JobPhase.FAILED || phase == JobPhase.CANCELLED;
  }

  private Path localDir() {
    return Path.of(System.getenv("KAON_LOCAL_DIR"));
  }

  private static Path cassandraDir() {
    String dir = System.getenv("KAON_CASSANDRA_DIR");
    if (dir != null) {
      return Path.of(dir);
    }
    String data = System.getenv("XDG_DATA_HOME");
    return Path.of(data != null ? data : System.getProperty("user.home") + "/.local/share", "kaon", "cassandra");
  }

  private void clusterSh(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(home.resolve("deploy/local/cluster.sh").toString()));
    command.addAll(List.of(args));
    exec(command.toArray(String[]::new));
  }

  private void cassandra(String command) throws IOException, InterruptedException {
    exec(home.resolve("deploy/cassandra/cassandra.sh").toString(), command);
  }

  private static void exec(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.INHERIT).start();
    if (p.waitFor() != 0) {
      OUT.println("(" + String.join(" ", command) + " exited " + p.exitValue() + ")");
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
