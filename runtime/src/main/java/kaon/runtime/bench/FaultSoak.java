package kaon.runtime.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.Row;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
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
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.SubmitJobRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;

/**
 * A random fault schedule against a local cluster of {@code deploy/local/cluster.sh}, as issue 9
 * asks before fault handling is called done: jobs run back to back while, every 8-20 s, a random
 * fault strikes: a node SIGKILLed (any node, the first included) and started again with {@code
 * cluster.sh start}, a node hung (SIGSTOP) for 2-10 s, or Cassandra stopped (SIGTERM or SIGKILL)
 * for 5-25 s. Afterwards it checks, through the API and the journal:
 *
 * <ul>
 *   <li>every job succeeded, each epoch trained on each sample once;
 *   <li>no job was ever stuck: its steps advanced or it said why (health) within 5 minutes;
 *   <li>one cluster: every node lists the same members;
 *   <li>never two acting coordinators: in each job's journal the writers follow each other and
 *       never interleave, and the sequence numbers are contiguous.
 * </ul>
 *
 * <p>Usage (through {@code bench/random-faults}): {@code [minutes] [seed]}; the cluster's
 * directory, ports, token and journal keyspaces come from the environment the script sets.
 */
public final class FaultSoak {

  private static final PrintStream OUT = System.out;
  private final Path home = Path.of(System.getProperty("kaon.home"));
  private final Random random;
  private final int apiBase = Integer.parseInt(System.getenv("KAON_LOCAL_API_PORT"));
  private final String bearer = "Bearer " + System.getenv("KAON_TOKEN");
  private final String journal = System.getenv("KAON_JOURNAL_KEYSPACE");
  private final ActorSystem<Void> client;
  private final List<JobServiceClient> jobs = new ArrayList<>();
  private final List<ClusterServiceClient> clusters = new ArrayList<>();
  private final Map<String, Progress> submitted = new LinkedHashMap<>();
  private final Map<String, Integer> faults = new LinkedHashMap<>();
  private final List<String> violations = new ArrayList<>();

  /** What was last seen of a job, to tell a stuck one. */
  private static final class Progress {
    long steps = -1;
    long generation = -1;
    long since = System.nanoTime();
    String health = "";
    JobPhase phase = JobPhase.JOB_PHASE_UNSPECIFIED;
  }

  private FaultSoak(long seed) {
    this.random = new Random(seed);
    this.client = ActorSystem.create(Behaviors.empty(), "soak-client",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING").withFallback(ConfigFactory.load()));
    for (int k = 0; k < 3; k++) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiBase + k, client).withTls(false)
          .withDeadline(Duration.ofSeconds(20));
      jobs.add(JobServiceClient.create(settings, client));
      clusters.add(ClusterServiceClient.create(settings, client));
    }
  }

  public static void main(String[] args) throws Exception {
    int minutes = args.length > 0 ? Integer.parseInt(args[0]) : 30;
    long seed = args.length > 1 ? Long.parseLong(args[1]) : System.currentTimeMillis();
    OUT.printf("random faults for %d min, seed %d%n", minutes, seed);
    FaultSoak soak = new FaultSoak(seed);
    int code;
    try {
      code = soak.run(Duration.ofMinutes(minutes));
    } finally {
      soak.client.terminate();
    }
    System.exit(code);
  }

  private int run(Duration length) throws Exception {
    clusterSh("start", "3");
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
    while (System.nanoTime() < grace && submitted.values().stream().anyMatch(p -> !ended(p.phase))) {
      waitWatching(5_000, false);
    }
    return verdict();
  }

  /** Watches the jobs for {@code millis}; {@code more}: submits the next one when the last ended. */
  private void waitWatching(long millis, boolean more) throws Exception {
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    while (System.nanoTime() < until) {
      for (Map.Entry<String, Progress> e : submitted.entrySet()) {
        observe(e.getKey(), e.getValue());
      }
      Progress last = submitted.values().stream().reduce((a, b) -> b).orElseThrow();
      if (more && ended(last.phase)) {
        submitNext();
      }
      Thread.sleep(1000);
    }
  }

  private void observe(String jobId, Progress p) {
    if (ended(p.phase)) {
      return;
    }
    Job job = anyNode(c -> c.getJob().addHeader("authorization", bearer)
        .invoke(GetJobRequest.newBuilder().setJobId(jobId).build()));
    if (job == null) {
      return; // no node answered now (faults); the stuck check below still runs on the clock
    }
    // A new generation says why it formed (its reason is in the job's history): not silent.
    if (job.getStepsDone() != p.steps || !job.getHealth().equals(p.health) || job.getPhase() != p.phase
        || job.getGeneration() != p.generation) {
      p.steps = job.getStepsDone();
      p.generation = job.getGeneration();
      p.health = job.getHealth();
      p.phase = job.getPhase();
      p.since = System.nanoTime();
    } else if (System.nanoTime() - p.since > Duration.ofMinutes(5).toNanos()) {
      violations.add(String.format("job %s stuck: no progress, new generation or new health for 5 min at step %d"
          + " (%s; health '%s')", jobId, p.steps, p.phase, p.health));
      p.since = System.nanoTime();
    }
    if (ended(job.getPhase())) {
      OUT.printf("%s job %s %s: %s%n", Instant.now(), jobId, job.getPhase(),
          job.getPhase() == JobPhase.SUCCEEDED ? "test accuracy " + job.getTestAccuracy() + ", "
              + job.getGenerationsCount() + " generations" : job.getMessage());
      if (job.getPhase() != JobPhase.SUCCEEDED) {
        violations.add("job " + jobId + " " + job.getPhase() + ": " + job.getMessage());
      } else {
        for (EpochResult epoch : job.getEpochsList()) {
          if (!epoch.getEachSampleOnce()) {
            violations.add("job " + jobId + " epoch " + epoch.getEpoch() + " did not use each sample once");
          }
        }
        if (job.getEpochsCount() != job.getSpec().getEpochs()) {
          violations.add("job " + jobId + " recorded " + job.getEpochsCount() + " of " + job.getSpec().getEpochs() + " epochs");
        }
      }
    }
  }

  private void submitNext() {
    String jobId = "soak-" + (submitted.size() + 1) + "-" + UUID.randomUUID().toString().substring(0, 6);
    SubmitJobRequest request = SubmitJobRequest.newBuilder().setRequestId(jobId)
        .setSpec(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(3)
            .setEpochs(Integer.getInteger("soak.epochs", 25)).setCheckpointEverySteps(100))
        .build();
    // Idempotent: a submission that reaches a node about to die is simply sent again.
    for (int attempt = 0; attempt < 60; attempt++) {
      if (anyNode(c -> c.submitJob().addHeader("authorization", bearer).invoke(request)) != null) {
        OUT.printf("%s submitted %s%n", Instant.now(), jobId);
        submitted.put(jobId, new Progress());
        return;
      }
      sleep(2000);
    }
    violations.add("job " + jobId + " could not be submitted for 2 min");
    submitted.put(jobId, new Progress());
  }

  // ------------------------------------------------------------------ faults

  private void strike() throws Exception {
    // As a supervisor would (systemd's Restart=on-failure): a node that exited, say because the
    // cluster downed it after a hang, is started again before the next fault.
    clusterSh("start", "3");
    int kind = random.nextInt(10);
    int node = 1 + random.nextInt(3);
    if (kind < 4) {
      fault("kill node " + node);
      clusterSh("kill", Integer.toString(node));
      sleep(random.nextInt(6000));
      clusterSh("start", "3");
    } else if (kind < 7) {
      int seconds = 2 + random.nextInt(9);
      fault("hang node " + node + " " + seconds + " s");
      String pid = Files.readString(localDir().resolve("node-" + node + ".pid")).trim();
      exec("kill", "-STOP", pid);
      // Asleep, not watching: a call to the hung node would stretch the hang by its deadline.
      sleep(seconds * 1000L);
      exec("kill", "-CONT", pid);
    } else {
      int seconds = 5 + random.nextInt(21);
      boolean kill = random.nextBoolean();
      fault("cassandra " + (kill ? "killed" : "stopped") + " " + seconds + " s");
      if (kill) {
        String pid = Files.readString(cassandraDir().resolve("cassandra.pid")).trim();
        exec("kill", "-KILL", pid);
      } else {
        cassandra("stop");
      }
      sleep(seconds * 1000L);
      cassandra("start");
    }
  }

  private void fault(String what) {
    OUT.printf("%s fault: %s%n", Instant.now(), what);
    faults.merge(what.replaceAll(" \\d+( s)?$", "").replaceAll("node \\d", "node"), 1, Integer::sum);
  }

  // ------------------------------------------------------------------ verdict

  private int verdict() throws Exception {
    for (Map.Entry<String, Progress> e : submitted.entrySet()) {
      if (!ended(e.getValue().phase)) {
        violations.add("job " + e.getKey() + " did not end 15 min after the schedule (" + e.getValue().phase + ", step "
            + e.getValue().steps + ", health '" + e.getValue().health + "')");
      }
    }
    checkOneCluster();
    checkJournals();
    OUT.println("faults: " + faults);
    OUT.printf(Locale.ROOT, "jobs: %d submitted, %d succeeded%n", submitted.size(),
        submitted.values().stream().filter(p -> p.phase == JobPhase.SUCCEEDED).count());
    if (violations.isEmpty()) {
      OUT.println("every invariant held");
      return 0;
    }
    violations.forEach(v -> OUT.println("VIOLATION: " + v));
    return 1;
  }

  private void checkOneCluster() throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    List<Set<String>> views = new ArrayList<>();
    while (System.nanoTime() < deadline) {
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
        views.add(up);
      }
      if (views.stream().allMatch(v -> v.size() == 3 && v.equals(views.get(0)))) {
        OUT.println("one cluster: " + views.get(0));
        return;
      }
      Thread.sleep(2000);
    }
    violations.add("the nodes do not agree on one cluster of 3: " + views);
  }

  /** Writers of each job's journal follow each other (a new one after a failover), never interleave. */
  private void checkJournals() {
    int port = Integer.parseInt(System.getenv().getOrDefault("KAON_CASSANDRA_PORT", "9042"));
    try (CqlSession cql = CqlSession.builder().addContactPoint(new InetSocketAddress("127.0.0.1", port))
        .withLocalDatacenter("datacenter1").build()) {
      for (String jobId : submitted.keySet()) {
        List<String> writers = new ArrayList<>();
        long expected = 1;
        for (Row row : cql.execute("SELECT sequence_nr, writer_uuid FROM " + journal
            + ".messages WHERE persistence_id = ? AND partition_nr = 0", "Job|" + jobId)) {
          if (row.getLong("sequence_nr") != expected++) {
            violations.add("job " + jobId + ": journal sequence numbers are not contiguous at " + row.getLong("sequence_nr"));
            break;
          }
          String w = row.getString("writer_uuid");
          if (writers.isEmpty() || !writers.get(writers.size() - 1).equals(w)) {
            if (writers.contains(w)) {
              violations.add("job " + jobId + ": writer " + w + " wrote again after another writer (two coordinators)");
            }
            writers.add(w);
          }
        }
        OUT.printf("journal of %s: %d events, %d writers in turn%n", jobId, expected - 1, writers.size());
      }
    }
  }

  // ------------------------------------------------------------------ plumbing

  private <T> T anyNode(java.util.function.Function<JobServiceClient, java.util.concurrent.CompletionStage<T>> call) {
    List<Integer> order = new ArrayList<>(List.of(0, 1, 2));
    java.util.Collections.shuffle(order, random);
    for (int k : order) {
      try {
        return call.apply(jobs.get(k)).toCompletableFuture().get(25, TimeUnit.SECONDS);
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
