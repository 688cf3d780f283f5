package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node's metrics as a real Prometheus (Debian's) scrapes them from its management port while a
 * job trains: the series exist and move, and every metric deploy/monitoring's Grafana dashboard
 * queries is there. The shipped Prometheus configurations and alert rules pass {@code promtool}.
 */
class MetricsTest {

  private static final Duration WAIT = Duration.ofMinutes(3);
  private static final Path MONITORING = Path.of(System.getProperty("kaon.home"), "deploy", "monitoring");
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void theShippedPrometheusFilesPassPromtool(@TempDir Path dir) throws Exception {
    assertEquals(0, promtool("check", "rules", MONITORING.resolve("alerts.yml").toString()));
    assertEquals(0, promtool("check", "config", MONITORING.resolve("prometheus-local.yml").toString()));
    // The VM configuration reads its targets from kaon-nodes.yml beside it: checked with the example.
    Files.copy(MONITORING.resolve("prometheus-vms.yml"), dir.resolve("prometheus-vms.yml"));
    Files.copy(MONITORING.resolve("alerts.yml"), dir.resolve("alerts.yml"));
    Files.copy(MONITORING.resolve("kaon-nodes.example.yml"), dir.resolve("kaon-nodes.yml"));
    assertEquals(0, promtool("check", "config", dir.resolve("prometheus-vms.yml").toString()));
  }

  @Test
  void prometheusScrapesANodeWhileAJobTrainsAndFindsEveryMetricTheDashboardQueries(@TempDir Path dir) throws Exception {
    String token = UUID.randomUUID().toString();
    int port = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    int managementPort = KaonProcess.freePort();
    int prometheusPort = KaonProcess.freePort();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token, "KAON_MANAGEMENT", "on",
        "KAON_MANAGEMENT_PORT", Integer.toString(managementPort)));
    Path config = dir.resolve("prometheus.yml");
    Files.writeString(config, String.join("\n",
        "global: {scrape_interval: 1s, evaluation_interval: 1s}",
        "rule_files: ['" + MONITORING.resolve("alerts.yml") + "']",
        "scrape_configs:",
        "  - job_name: kaon",
        "    metrics_path: /metrics",
        "    static_configs: [{targets: ['127.0.0.1:" + managementPort + "']}]", ""));
    String jobId = "metrics-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    Files.createDirectories(KaonProcess.LOGS);
    Process prometheus = new ProcessBuilder("prometheus", "--config.file=" + config,
        "--storage.tsdb.path=" + dir.resolve("tsdb"), "--web.listen-address=127.0.0.1:" + prometheusPort)
        .redirectErrorStream(true).redirectOutput(KaonProcess.LOGS.resolve("metrics-prometheus.log").toFile()).start();
    try (KaonProcess node = KaonProcess.start("metrics-node", env, "node", "--devices", "2", "--port",
        Integer.toString(port), "--api-port", Integer.toString(apiPort))) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      String bearer = "Bearer " + token;
      KaonProcess.awaitMembersUp(cluster, bearer, 1, WAIT);
      String api = "http://127.0.0.1:" + prometheusPort;
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2)
          .setMaxWorkers(2).setEpochs(3).setCheckpointEverySteps(100));
      var watched = KaonProcess.watch(jobs, bearer, jobId, client);

      // The job's samples, summed over its ranks, move between scrapes.
      String samples = "sum(kaon_samples_total{job_id=\"" + jobId + "\"})";
      double first = awaitValue(api, samples, v -> v > 0);
      awaitValue(api, samples, v -> v > first);
      // While it trains: its steps' parts, its all-reduce, its checkpoints and its first
      // generation; the node's two devices owned, one member up, both Cassandra sessions up, the
      // job running, the JVM's memory.
      for (String phase : List.of("compute", "allreduce", "optimizer")) {
        awaitValue(api, "sum(kaon_step_phase_seconds_count{job_id=\"" + jobId + "\",phase=\"" + phase + "\"})", v -> v > 0);
      }
      awaitValue(api, "sum(kaon_allreduce_bytes_total{job_id=\"" + jobId + "\",transport=\"shared-memory\"})", v -> v > 0);
      awaitValue(api, "sum(kaon_checkpoint_seconds_count{operation=\"write\"})", v -> v > 0);
      awaitValue(api, "sum(kaon_checkpoint_bytes_total{operation=\"write\"})", v -> v > 0);
      awaitValue(api, "sum(kaon_generations_total{reason=\"submitted\"})", v -> v == 1);
      awaitValue(api, "sum(kaon_devices{state=\"owned\"})", v -> v == 2);
      awaitValue(api, "sum(kaon_cluster_members{status=\"up\"})", v -> v == 1);
      awaitValue(api, "min(kaon_cassandra_up)", v -> v == 1);
      awaitValue(api, "sum(kaon_jobs{phase=\"running\"})", v -> v == 1);
      awaitValue(api, "sum(jvm_memory_used_bytes{area=\"heap\"})", v -> v > 0);
      awaitValue(api, "sum(kaon_grpc_requests_total{method=\"/kaon.v1.JobService/SubmitJob\",code=\"0\"})", v -> v == 1);
      // After its first epoch: the job's rate and its ranks' bus bandwidth.
      awaitValue(api, "max(kaon_job_samples_per_second{job_id=\"" + jobId + "\"})", v -> v > 0);
      awaitValue(api, "max(kaon_allreduce_bus_bandwidth_bytes_per_second{job_id=\"" + jobId + "\"})", v -> v > 0);

      // Every metric the dashboard queries has series in Prometheus (while the job runs: a job's
      // coordinator-side series leave the node with it).
      Set<String> missing = new TreeSet<>();
      for (String metric : dashboardMetrics()) {
        if (query(api, "count(" + metric + ")").isEmpty()) {
          missing.add(metric);
        }
      }
      assertEquals(Set.of(), missing, "metrics the dashboard queries that Prometheus does not have");
      // What Grafana would draw: every panel's query, as the dashboard has it, answers with data
      // while the job trains (NaN counts: a quantile of a histogram no fault has filled yet).
      Set<String> blank = new TreeSet<>();
      for (String expr : dashboardQueries()) {
        if (query(api, expr).isEmpty()) {
          blank.add(expr);
        }
      }
      assertEquals(Set.of(), blank, "dashboard panels with nothing to draw while a job trains");

      List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      awaitValue(api, "sum(kaon_devices{state=\"free\"})", v -> v == 2);

      // The alert rules loaded and none fires on a healthy node.
      JsonNode rules = get(api + "/api/v1/rules").path("data").path("groups");
      assertTrue(rules.size() > 0, rules.toString());
      JsonNode alerts = get(api + "/api/v1/alerts").path("data").path("alerts");
      for (JsonNode alert : alerts) {
        assertTrue(!"firing".equals(alert.path("state").asText()), "firing on a healthy node: " + alert);
      }
      jobs.close();
      cluster.close();
      node.stop();
    } finally {
      prometheus.destroy();
      prometheus.waitFor(10, TimeUnit.SECONDS);
      client.terminate();
    }
  }

  /** Every query of the dashboard's panels, as Grafana sends it. */
  private static Set<String> dashboardQueries() throws IOException {
    JsonNode dashboard = JSON.readTree(MONITORING.resolve("grafana-dashboard.json").toFile());
    Set<String> queries = new TreeSet<>();
    for (JsonNode panel : dashboard.path("panels")) {
      for (JsonNode target : panel.path("targets")) {
        queries.add(target.path("expr").asText());
      }
    }
    return queries;
  }

  /** The metric names in the dashboard's queries (kaon_*, jvm_*, and Prometheus' own up). */
  private static Set<String> dashboardMetrics() throws IOException {
    JsonNode dashboard = JSON.readTree(MONITORING.resolve("grafana-dashboard.json").toFile());
    Set<String> names = new TreeSet<>();
    Pattern metric = Pattern.compile("\\b((?:kaon|jvm)_[a-z_]+|up)\\s*[{\\[]");
    for (JsonNode panel : dashboard.path("panels")) {
      for (JsonNode target : panel.path("targets")) {
        Matcher m = metric.matcher(target.path("expr").asText());
        while (m.find()) {
          names.add(m.group(1));
        }
      }
    }
    assertTrue(names.size() >= 10, "found too few metrics in the dashboard: " + names);
    return names;
  }

  /**
   * Asks Prometheus {@code expr} (a single value) until it satisfies {@code ok}, and returns that
   * value. A Prometheus still starting refuses the connection, and is asked again.
   */
  private static double awaitValue(String api, String expr, java.util.function.DoublePredicate ok) throws Exception {
    return KaonProcess.awaitAnswer(() -> queryAsync(api, expr), values -> values.size() == 1 && ok.test(values.get(0)),
        expr + " to hold (its log: target/node-logs/metrics-prometheus.log)", WAIT).get(0);
  }

  /** The values of an instant query. */
  private static List<Double> query(String api, String expr) throws Exception {
    return queryAsync(api, expr).toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private static java.util.concurrent.CompletionStage<List<Double>> queryAsync(String api, String expr) {
    return getAsync(api + "/api/v1/query?query=" + URLEncoder.encode(expr, StandardCharsets.UTF_8)).thenApply(answer -> {
      List<Double> values = new ArrayList<>();
      for (JsonNode series : answer.path("data").path("result")) {
        values.add(Double.parseDouble(series.path("value").get(1).asText()));
      }
      return values;
    });
  }

  private static JsonNode get(String url) throws Exception {
    return getAsync(url).toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private static java.util.concurrent.CompletionStage<JsonNode> getAsync(String url) {
    return HTTP.sendAsync(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString())
        .thenApply(response -> {
          try {
            return JSON.readTree(response.body());
          } catch (IOException e) {
            throw new java.io.UncheckedIOException("Prometheus answered " + url + " with something not JSON", e);
          }
        });
  }

  private static int promtool(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of("promtool"));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int code = p.waitFor();
    assertEquals(0, code, String.join(" ", command) + ":\n" + out);
    return code;
  }
}
