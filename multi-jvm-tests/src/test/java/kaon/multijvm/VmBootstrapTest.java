package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import kaon.runtime.health.ManagementTls;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListMembersRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Three VMs made of network namespaces (deploy/vm/netns-vms.sh), each with Kaon installed from the
 * tarball by install.sh and started with its unit's ExecStart line, and a fourth running
 * Cassandra. Through the API only: the three form one cluster by discovery; a job trains on all
 * three; the node that formed the cluster is SIGKILLed and started again the same way while the
 * job runs, rejoins the same cluster, and the job finishes with each sample once per epoch; the
 * CLI given all three endpoints keeps answering while it is down. A node whose certificate is not
 * from the cluster's CA cannot join.
 */
class VmBootstrapTest {

  private static final Duration WAIT = Duration.ofMinutes(3);
  private static final Path ROOT = Path.of(System.getProperty("kaon.home")).toAbsolutePath().normalize();
  private static final Path SCRIPT = ROOT.resolve("deploy/vm/netns-vms.sh");
  private static final String NET = "10.77.0";
  private static final Path DIR = Path.of("target", "vms").toAbsolutePath();

  @Test
  void threeVmsFormOneClusterAndTheFirstRejoinsAfterACrash() throws Exception {
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "network namespaces need root");
    Path tarball = tarball();
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    Throwable failed = null;
    try {
      // Fresh VMs: no earlier run's installs, Cassandra data (its remembered jobs) or certificates.
      deleteRecursively(DIR);
      long started = System.nanoTime();
      vms("up", tarball.toString());
      String bearer = "Bearer " + Files.readString(DIR.resolve("token")).trim();
      List<ClusterServiceClient> clusters = new ArrayList<>();
      for (int k = 1; k <= 3; k++) {
        clusters.add(ClusterServiceClient.create(settings(k, client), client));
      }
      Set<String> formed = awaitOneCluster(clusters, bearer, 3);
      System.out.printf("3 VMs: one cluster of %s after %.1f s (install included)%n", formed,
          (System.nanoTime() - started) / 1e9);
      for (int k = 1; k <= 3; k++) {
        assertEquals(200, ready(k).statusCode(), "vm" + k + " /ready: " + ready(k).body());
        // The installed configuration's log directory holds the node's log.
        Path log = DIR.resolve("vm" + k + "/root/var/log/kaon/node.log");
        assertTrue(Files.isRegularFile(log) && Files.size(log) > 0, log + " should hold the node's log");
      }
      // The management port speaks HTTPS; the bootstrap probe, which lists the members, answers
      // another node's certificate and nobody else.
      String seedNodes = "https://" + NET + ".11:7626/bootstrap/seed-nodes";
      ManagementTls vm2 = new ManagementTls(DIR.resolve("tls/vm2.crt"), DIR.resolve("tls/vm2.key"), DIR.resolve("tls/ca.crt"));
      HttpResponse<String> asNode = get(vm2.context(), seedNodes);
      assertEquals(200, asNode.statusCode(), asNode.body());
      assertTrue(asNode.body().contains(NET + ".12"), asNode.body());
      HttpResponse<String> asStranger = get(trustingTheCa(), seedNodes);
      assertEquals(403, asStranger.statusCode(), asStranger.body());
      assertTrue(!asStranger.body().contains(NET + ".12"), asStranger.body());

      // A machine that reaches the cluster port but holds no certificate of the cluster's CA (its
      // own CA signed one with the cluster's name) cannot join: Pekko gives up, the node exits 4,
      // and the members stay the three.
      Cli intruder = intruder();
      assertEquals(4, intruder.exitCode(), "the intruder should have been refused:\n" + intruder.output());
      assertEquals(formed, awaitOneCluster(clusters, bearer, 3));

      // Submitted to VM 2; it trains on a device of each VM.
      JobServiceClient jobs = JobServiceClient.create(settings(2, client), client);
      String jobId = "vm-job-" + Long.toHexString(System.nanoTime());
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp")
          .setMinWorkers(2).setMaxWorkers(3).setEpochs(2).setCheckpointEverySteps(50));
      Job training = KaonProcess.awaitJob(jobs, bearer, jobId, j -> j.getWorldSize() == 3 && j.hasLatestCheckpoint(),
          "3 ranks and a checkpoint", WAIT);
      assertEquals(3, training.getWorldSize(), training.toString());

      // VM 1 formed the cluster; it crashes and its unit starts it again.
      vms("kill", "1");
      // The CLI, given every endpoint (VM 1's first), keeps answering while VM 1 is down.
      long cliFrom = System.nanoTime();
      Cli cli = cli("cluster", "--endpoint", NET + ".11:50051," + NET + ".12:50051," + NET + ".13:50051",
          "--token-file", DIR.resolve("token").toString());
      assertEquals(0, cli.exitCode(), cli.output());
      assertTrue(cli.output().contains("pekko://kaon@" + NET + ".12:25520"), cli.output());
      System.out.printf("CLI with VM 1 down: answered by the next endpoint in %.1f s%n", (System.nanoTime() - cliFrom) / 1e9);
      long restartedAt = System.nanoTime();
      vms("start", "1");
      Set<String> rejoined = awaitOneCluster(clusters, bearer, 3);
      assertEquals(formed, rejoined, "VM 1 must rejoin the same cluster at the same address");
      while (ready(1).statusCode() != 200) {
        if (System.nanoTime() - restartedAt > WAIT.toNanos()) {
          throw new AssertionError("vm1 not ready after its restart: " + ready(1).body());
        }
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
      }
      System.out.printf("VM 1 killed and started again: ready %.1f s later%n", (System.nanoTime() - restartedAt) / 1e9);

      List<JobEvent> events = KaonProcess.watch(jobs, bearer, jobId, client).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, 2);
    } catch (Exception | Error e) {
      failed = e;
      throw e;
    } finally {
      client.terminate();
      try {
        vms("down");
      } catch (AssertionError e) {
        // A failed tear-down must not hide why the test failed.
        if (failed == null) {
          throw e;
        }
        failed.addSuppressed(e);
      }
    }
  }

  private static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static Path tarball() throws IOException {
    try (Stream<Path> files = Files.list(ROOT.resolve("deploy/target"))) {
      return files.filter(p -> p.getFileName().toString().matches("kaon-.*\\.tar\\.gz")).findFirst()
          .orElseThrow(() -> new AssertionError("no tarball in deploy/target: run mvn -B package first"));
    }
  }

  private static GrpcClientSettings settings(int vm, ActorSystem<?> client) {
    return GrpcClientSettings.connectToServiceAt(NET + ".1" + vm, 50051, client).withTls(false);
  }

  private static HttpResponse<String> ready(int vm) throws Exception {
    try {
      return get(trustingTheCa(), "https://" + NET + ".1" + vm + ":7626/ready");
    } catch (IOException e) {
      // Refused, timed out, or closed while the node starts: not ready, and why.
      return new DownResponse(e.toString());
    }
  }

  private static HttpResponse<String> get(SSLContext tls, String url) throws IOException, InterruptedException {
    return HttpClient.newBuilder().sslContext(tls).build().send(HttpRequest.newBuilder(URI.create(url))
        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** A client's TLS that trusts the cluster's CA (and checks the address, which the certificates name) but has no certificate. */
  private static SSLContext trustingTheCa() throws Exception {
    KeyStore trusted = KeyStore.getInstance("PKCS12");
    trusted.load(null, null);
    try (InputStream in = Files.newInputStream(DIR.resolve("tls/ca.crt"))) {
      trusted.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    trust.init(trusted);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, trust.getTrustManagers(), null);
    return context;
  }

  /**
   * Waits until every VM's ListMembers names the same {@code size} members, all Up; returns their
   * addresses.
   */
  private static Set<String> awaitOneCluster(List<ClusterServiceClient> clusters, String bearer, int size) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    List<Set<String>> views = List.of();
    while (System.nanoTime() < deadline) {
      views = new ArrayList<>();
      for (ClusterServiceClient cluster : clusters) {
        try {
          views.add(cluster.listMembers().addHeader("authorization", bearer)
              .invoke(ListMembersRequest.getDefaultInstance()).toCompletableFuture().get(10, TimeUnit.SECONDS)
              .getMembersList().stream().map(m -> m.getAddress() + " " + m.getStatus())
              .collect(Collectors.toCollection(TreeSet::new)));
        } catch (Exception notYet) {
          views.add(Set.of("unreachable: " + notYet.getMessage()));
        }
      }
      Set<String> first = views.get(0);
      if (first.size() == size && first.stream().allMatch(m -> m.endsWith(" Up")) && views.stream().allMatch(first::equals)) {
        return first;
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
    }
    throw new AssertionError("the VMs do not agree on one cluster of " + size + " Up members: " + views);
  }

  /** What the installed CLI printed (stdout and stderr) and its exit code. */
  private record Cli(int exitCode, String output) {}

  /** Runs the CLI installed on VM 1 (its bin/kaon, from the tarball) on this host. */
  private static Cli cli(String... args) throws IOException, InterruptedException {
    Path kaon;
    try (Stream<Path> dirs = Files.list(DIR.resolve("dist"))) {
      kaon = dirs.findFirst().orElseThrow().resolve("bin/kaon");
    }
    List<String> command = new ArrayList<>(List.of(kaon.toString()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    if (!process.waitFor(2, TimeUnit.MINUTES)) {
      process.destroyForcibly();
      throw new AssertionError("kaon " + String.join(" ", args) + " did not end in 2 min: " + output);
    }
    return new Cli(process.exitValue(), output);
  }

  /**
   * A node on this host (10.77.0.1, on the VMs' bridge) that tries to join VM 1 over TLS with a
   * certificate from a CA of its own; it gives up joining after 10 s.
   */
  private static Cli intruder() throws IOException, InterruptedException {
    Path tls = DIR.resolve("intruder");
    Files.createDirectories(tls);
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kaon.cluster",
        "-addext", "subjectAltName=DNS:kaon.cluster,IP:" + NET + ".1",
        "-keyout", tls.resolve("node.key").toString(), "-out", tls.resolve("node.crt").toString());
    Path kaon;
    try (Stream<Path> dirs = Files.list(DIR.resolve("dist"))) {
      kaon = dirs.findFirst().orElseThrow().resolve("bin/kaon");
    }
    ProcessBuilder builder = new ProcessBuilder(kaon.toString(), "node", "--seed", NET + ".11:25520", "--host", NET + ".1",
        "--port", "25599", "--api-port", "0", "--roles", "coordinator").redirectErrorStream(true);
    builder.environment().put("KAON_CASSANDRA_CONTACT_POINT", NET + ".10:9042");
    builder.environment().put("KAON_TOKEN", "intruder");
    builder.environment().put("KAON_JAVA_OPTS", String.join(" ",
        "-Dkaon.cluster.tls.certificate=" + tls.resolve("node.crt"),
        "-Dkaon.cluster.tls.private-key=" + tls.resolve("node.key"),
        "-Dkaon.cluster.tls.ca=" + tls.resolve("node.crt"),
        "-Dpekko.cluster.shutdown-after-unsuccessful-join-seed-nodes=10s"));
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes());
    if (!process.waitFor(2, TimeUnit.MINUTES)) {
      process.destroyForcibly();
      throw new AssertionError("the intruder neither joined nor gave up in 2 min:\n" + output);
    }
    return new Cli(process.exitValue(), output);
  }

  private static void openssl(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    if (process.waitFor() != 0) {
      throw new AssertionError("openssl failed: " + output);
    }
  }

  /** Runs netns-vms.sh with this test's directory; its output goes to target/vms/script.log. */
  private static void vms(String... args) throws IOException, InterruptedException {
    Files.createDirectories(DIR);
    List<String> command = new ArrayList<>(List.of("bash", SCRIPT.toString()));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(DIR.resolve("script.log").toFile()));
    builder.environment().put("KAON_VMS_DIR", DIR.toString());
    builder.environment().put("KAON_VMS_NET", NET);
    Process process = builder.start();
    if (!process.waitFor(5, TimeUnit.MINUTES) || process.exitValue() != 0) {
      throw new AssertionError("netns-vms.sh " + String.join(" ", args) + " failed; see " + DIR.resolve("script.log")
          + ":\n" + Files.readString(DIR.resolve("script.log")));
    }
  }

  /** What {@link #ready} returns for a node that does not answer. */
  private record DownResponse(String why) implements HttpResponse<String> {
    @Override public int statusCode() { return 0; }
    @Override public HttpRequest request() { return null; }
    @Override public java.util.Optional<HttpResponse<String>> previousResponse() { return java.util.Optional.empty(); }
    @Override public java.net.http.HttpHeaders headers() { return java.net.http.HttpHeaders.of(java.util.Map.of(), (a, b) -> true); }
    @Override public String body() { return why; }
    @Override public java.util.Optional<javax.net.ssl.SSLSession> sslSession() { return java.util.Optional.empty(); }
    @Override public URI uri() { return null; }
    @Override public HttpClient.Version version() { return HttpClient.Version.HTTP_1_1; }
  }
}
