package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListMembersRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * The local cluster of {@code deploy/local/cluster.sh}, as a user runs it: three nodes, a job, the
 * first node SIGKILLed mid-job and started again with {@code cluster.sh start 3}. It must join the
 * running cluster rather than form one of its own: every node's {@code ListMembers} shows the same
 * three members, and the job completes. The restarted node's log file keeps what it said before the kill.
 */
class FirstNodeRestartTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void aRestartedFirstNodeJoinsTheRunningClusterAndTheJobCompletes() throws Exception {
    String token = UUID.randomUUID().toString();
    Path dir = KaonProcess.LOGS.resolve("first-node-restart");
    // The nodes append to their logs: an earlier run's (a build without clean) must not count.
    if (Files.exists(dir)) {
      try (var old = Files.walk(dir)) {
        old.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
    Files.createDirectories(dir);
    int clusterBase = consecutiveFreePorts(3);
    int apiBase = consecutiveFreePorts(3);
    Map<String, String> env = new HashMap<>(KaonProcess.isolated(Map.of("KAON_TOKEN", token)));
    env.put("KAON_LOCAL_DIR", dir.toAbsolutePath().toString());
    env.put("KAON_LOCAL_PORT", Integer.toString(clusterBase));
    env.put("KAON_LOCAL_API_PORT", Integer.toString(apiBase));
    env.put("KAON_JAVA_OPTS", "-Xmx1g");
    String jobId = "first-node-" + UUID.randomUUID().toString().substring(0, 8);
    String bearer = "Bearer " + token;
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try {
      clusterSh(env, "start", "3");
      List<ClusterServiceClient> clusters = new ArrayList<>();
      for (int k = 0; k < 3; k++) {
        clusters.add(ClusterServiceClient.create(
            GrpcClientSettings.connectToServiceAt("127.0.0.1", apiBase + k, client).withTls(false), client));
      }
      awaitOneCluster(clusters, bearer);
      // Watched and asked through node 2, which stays up.
      JobServiceClient jobs = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiBase + 1, client).withTls(false), client);
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1)
          .setMaxWorkers(3).setEpochs(2).setCheckpointEverySteps(100));
      var watched = KaonProcess.watch(jobs, bearer, jobId, client);
      KaonProcess.awaitCheckpoint(jobs, bearer, jobId, WAIT);

      // What node 1 wrote before the kill; its restart must append to it, not replace it.
      byte[] before = Files.readAllBytes(dir.resolve("node-1.log"));
      clusterSh(env, "kill", "1");
      clusterSh(env, "start", "3");
      awaitOneCluster(clusters, bearer);

      List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, 2);
      // One cluster to the end: the members agree after the job too.
      awaitOneCluster(clusters, bearer);

      // Node 1's log (cluster.sh's file, where a user reads what a node said) was appended to, not
      // truncated: it begins with what the first run wrote, and cluster.sh marked both starts.
      byte[] after = Files.readAllBytes(dir.resolve("node-1.log"));
      assertTrue(after.length > before.length && java.util.Arrays.equals(before, 0, before.length, after, 0, before.length),
          "node-1.log of " + after.length + " bytes does not begin with the " + before.length + " written before the kill");
      String log = new String(after, java.nio.charset.StandardCharsets.UTF_8);
      assertEquals(2, log.lines().filter(l -> l.startsWith("=== node 1 starting at ")).count(), "starts marked in node-1.log");
      System.out.printf("first node restarted: one cluster of 3 throughout; job %s succeeded in %d generations%n",
          jobId, last.getStatus().getGeneration());
    } finally {
      try {
        clusterSh(env, "stop");
      } finally {
        client.terminate();
      }
    }
  }

  /**
   * Waits until all three nodes answer {@code ListMembers} with the same three members Up. A node
   * that formed a cluster of its own would list only itself.
   */
  private static void awaitOneCluster(List<ClusterServiceClient> clusters, String bearer) {
    long deadline = System.nanoTime() + WAIT.toNanos();
    List<Set<String>> views = new ArrayList<>();
    while (System.nanoTime() < deadline) {
      views.clear();
      for (ClusterServiceClient cluster : clusters) {
        Set<String> up = new TreeSet<>();
        try {
          cluster.listMembers().addHeader("authorization", bearer).invoke(ListMembersRequest.getDefaultInstance())
              .toCompletableFuture().get(10, TimeUnit.SECONDS)
              .getMembersList().stream().filter(m -> m.getStatus().equals("Up")).forEach(m -> up.add(m.getAddress()));
        } catch (Exception e) {
          up.add("unreachable: " + e.getMessage());
        }
        views.add(up);
      }
      if (views.stream().allMatch(v -> v.size() == 3 && v.equals(views.get(0)))) {
        return;
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
    }
    throw new AssertionError("the nodes do not agree on one cluster of 3 after " + WAIT + ": " + views);
  }


  private static void clusterSh(Map<String, String> env, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("kaon.home"), "deploy", "local", "cluster.sh").toString());
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).inheritIO();
    builder.environment().putAll(env);
    int code = builder.start().waitFor();
    if (code != 0) {
      throw new AssertionError("cluster.sh " + String.join(" ", args) + " exited " + code);
    }
  }

  /** The first of {@code n} consecutive loopback ports that were free when asked. */
  private static int consecutiveFreePorts(int n) throws IOException {
    for (int attempt = 0; attempt < 50; attempt++) {
      int first = KaonProcess.freePort();
      if (first + n > 65535) {
        continue;
      }
      boolean free = true;
      for (int p = first + 1; p < first + n && free; p++) {
        try (ServerSocket s = new ServerSocket(p, 1, InetAddress.getLoopbackAddress())) {
          free = true;
        } catch (IOException taken) {
          free = false;
        }
      }
      if (free) {
        return first;
      }
    }
    throw new IOException("no " + n + " consecutive free ports");
  }
}
