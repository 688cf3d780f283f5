package kaon.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NodeConfigTest {

  private static Config node(String settings) {
    return ConfigFactory.parseString(settings).withFallback(ConfigFactory.load()).resolve();
  }

  @Test
  void configDiscoveryBecomesBootstrapSettings() {
    Config config = node("""
        kaon.mode = vm
        kaon.cluster.name = train
        kaon.cluster.bind-address = "10.0.0.3"
        kaon.cluster.discovery { method = config, hosts = ["10.0.0.2", "10.0.0.3:7700", "10.0.0.4"] }
        kaon.cassandra.contact-points = ["10.0.0.9:9042"]
        """);
    JoinPlan plan = NodeConfig.plan(config);
    Config applied = NodeConfig.apply(config, plan);
    assertEquals("10.0.0.3", applied.getString("pekko.remote.artery.canonical.hostname"));
    assertEquals(25520, applied.getInt("pekko.remote.artery.canonical.port"));
    assertEquals("10.0.0.3", applied.getString("pekko.management.http.hostname"));
    assertEquals("10.0.0.3", applied.getString("kaon.grpc.interface"));
    assertEquals("config", applied.getString("pekko.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
    assertEquals("train", applied.getString("pekko.management.cluster.bootstrap.contact-point-discovery.service-name"));
    assertEquals(List.of(Map.of("host", "10.0.0.2", "port", 7626), Map.of("host", "10.0.0.3", "port", 7700),
            Map.of("host", "10.0.0.4", "port", 7626)),
        applied.getList("pekko.discovery.config.services.train.endpoints").unwrapped());
    // A fixed list needs no long margin; DNS keeps bootstrap.conf's.
    assertEquals(java.time.Duration.ofSeconds(1),
        applied.getDuration("pekko.management.cluster.bootstrap.contact-point-discovery.stable-margin"));
    assertEquals(List.of("10.0.0.9:9042"), plan.contactPoints());
    assertEquals(false, applied.getBoolean("pekko.persistence.cassandra.journal.tables-autocreate"));
    assertEquals(false, applied.getBoolean("kaon.checkpoint.autocreate"));
    assertEquals(false, applied.getBoolean("kaon.job.lease.autocreate"));
  }

  @Test
  void tlsFilesMakeTheClusterPortMutualTls(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
    for (String f : List.of("node.crt", "node.key", "ca.crt")) {
      java.nio.file.Files.writeString(dir.resolve(f), "pem");
    }
    Config config = node("kaon.cluster.tls { certificate = \"" + dir.resolve("node.crt") + "\", private-key = \""
        + dir.resolve("node.key") + "\", ca = \"" + dir.resolve("ca.crt") + "\" }");
    JoinPlan plan = NodeConfig.plan(config);
    assertEquals(List.of(), plan.problems());
    Config applied = NodeConfig.apply(config, plan);
    assertEquals("tls-tcp", applied.getString("pekko.remote.artery.transport"));
    assertEquals(dir.resolve("node.key").toString(), applied.getString("pekko.remote.artery.ssl.rotating-keys-engine.key-file"));
    assertEquals(dir.resolve("ca.crt").toString(), applied.getString("pekko.remote.artery.ssl.rotating-keys-engine.ca-cert-file"));

    Config missing = node("kaon.cluster.tls { certificate = \"" + dir.resolve("node.crt") + "\", private-key = \""
        + dir.resolve("gone.key") + "\", ca = \"" + dir.resolve("ca.crt") + "\" }");
    assertEquals(List.of("kaon.cluster.tls: cannot read " + dir.resolve("gone.key")), NodeConfig.plan(missing).problems());
  }

  @Test
  void dnsDiscoveryLooksUpTheName() {
    Config config = node("""
        kaon.cluster.discovery { method = dns, dns-name = "kaon.internal" }
        kaon.cassandra.contact-point = "10.0.0.9:9042"
        """);
    Config applied = NodeConfig.apply(config, NodeConfig.plan(config));
    assertEquals("pekko-dns", applied.getString("pekko.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
    assertEquals("kaon.internal", applied.getString("pekko.management.cluster.bootstrap.contact-point-discovery.service-name"));
    assertEquals(7626, applied.getInt("pekko.management.cluster.bootstrap.contact-point.fallback-port"));
    assertEquals(java.time.Duration.ofSeconds(3),
        applied.getDuration("pekko.management.cluster.bootstrap.contact-point-discovery.stable-margin"));
  }

  @Test
  void anUnknownModeIsRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NodeConfig.isVm(node("kaon.mode = cloud")));
    assertEquals("kaon.mode must be \"local\" or \"vm\", was \"cloud\"", e.getMessage());
  }

  @Test
  void contactPointsMergeOnce() {
    assertEquals(List.of("a:9042", "b:9042"), NodeConfig.contactPoints(node("""
        kaon.cassandra.contact-points = ["a:9042", "b:9042"]
        kaon.cassandra.contact-point = "a:9042"
        """)));
  }
}
