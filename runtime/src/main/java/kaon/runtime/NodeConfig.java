package kaon.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Turns Kaon's own node settings ({@code kaon.mode}, {@code kaon.cluster}, {@code
 * kaon.management}, {@code kaon.cassandra.contact-points}) into the libraries' settings (Artery,
 * Pekko Management, Cluster Bootstrap, discovery), so that an operator writes one small file
 * (install.sh's kaon.conf) and never Pekko's keys.
 */
public final class NodeConfig {

  private NodeConfig() {}

  /** The join plan of {@code config} (see {@link JoinPlan#decide}). */
  public static JoinPlan plan(Config config) {
    Config discovery = config.getConfig("kaon.cluster.discovery");
    Map<String, String> tls = tlsFiles(config);
    return JoinPlan.decide(new JoinPlan.Inputs(
        isVm(config),
        config.getStringList("pekko.cluster.seed-nodes"),
        discovery.getString("method").trim(),
        discovery.getStringList("hosts"),
        discovery.getString("dns-name").trim(),
        contactPoints(config),
        tls,
        tls.values().stream().filter(f -> !Files.isReadable(Path.of(f))).toList()));
  }

  /** The files of kaon.cluster.tls that are set, by setting name. */
  static Map<String, String> tlsFiles(Config config) {
    Map<String, String> files = new java.util.LinkedHashMap<>();
    for (String name : JoinPlan.TLS_FILES) {
      String file = config.getString("kaon.cluster.tls." + name).trim();
      if (!file.isEmpty()) {
        files.put(name, file);
      }
    }
    return files;
  }

  /** {@code kaon.mode = vm}; anything but "local" or "vm" is refused. */
  public static boolean isVm(Config config) {
    String mode = config.getString("kaon.mode").trim();
    if (!mode.equals("local") && !mode.equals("vm")) {
      throw new IllegalArgumentException("kaon.mode must be \"local\" or \"vm\", was \"" + mode + "\"");
    }
    return mode.equals("vm");
  }

  /** The Cassandra contact points: {@code contact-points} and {@code contact-point}, in that order, once each. */
  public static List<String> contactPoints(Config config) {
    LinkedHashSet<String> points = new LinkedHashSet<>();
    for (String point : config.getStringList("kaon.cassandra.contact-points")) {
      if (!point.isBlank()) {
        points.add(point.trim());
      }
    }
    String single = config.getString("kaon.cassandra.contact-point");
    if (!single.isBlank()) {
      points.add(single.trim());
    }
    return List.copyOf(points);
  }

  /** Whether this node serves its management port (health and bootstrap's probes). */
  public static boolean managementEnabled(Config config, JoinPlan plan) {
    return plan.join() == JoinPlan.Join.DISCOVERY || config.getBoolean("kaon.management.enabled");
  }

  /** {@code config} with the libraries' settings that {@code plan} and Kaon's node settings imply. */
  public static Config apply(Config config, JoinPlan plan) {
    Map<String, Object> values = new java.util.HashMap<>();
    String bind = config.getString("kaon.cluster.bind-address").trim();
    String host = bind.isEmpty() ? config.getString("pekko.remote.artery.canonical.hostname") : bind;
    if (!bind.isEmpty()) {
      values.put("pekko.remote.artery.canonical.hostname", bind);
      if (config.getString("kaon.grpc.interface").equals("127.0.0.1")) {
        // The API is for clients on other machines too; an explicit interface still wins.
        values.put("kaon.grpc.interface", bind);
      }
    }
    if (isVm(config)) {
      if (config.getInt("pekko.remote.artery.canonical.port") == 0) {
        values.put("pekko.remote.artery.canonical.port", config.getInt("kaon.cluster.port"));
      }
      // The operator creates keyspaces once with the replication they need (kaon admin
      // apply-schema); one made by whichever node starts first would get a local default.
      for (String autocreate : List.of("pekko.persistence.cassandra.journal.keyspace-autocreate",
          "pekko.persistence.cassandra.journal.tables-autocreate", "pekko.persistence.cassandra.snapshot.keyspace-autocreate",
          "pekko.persistence.cassandra.snapshot.tables-autocreate", "kaon.checkpoint.autocreate", "kaon.job.lease.autocreate")) {
        values.put(autocreate, false);
      }
    }
    if (plan.tls()) {
      // Mutual TLS on the cluster port: a peer must present a certificate of the cluster's CA that
      // shares a subject name with this node's own. The files are read again when the cached
      // context expires (bootstrap.conf), so rotated certificates take effect without a restart.
      Map<String, String> tls = tlsFiles(config);
      String engine = "pekko.remote.artery.ssl.rotating-keys-engine.";
      values.put("pekko.remote.artery.transport", "tls-tcp");
      values.put("pekko.remote.artery.ssl.ssl-engine-provider",
          "org.apache.pekko.remote.artery.tcp.ssl.RotatingKeysSSLEngineProvider");
      values.put(engine + "cert-file", tls.get("certificate"));
      values.put(engine + "key-file", tls.get("private-key"));
      values.put(engine + "ca-cert-file", tls.get("ca"));
    }
    int managementPort = config.getInt("kaon.management.port");
    values.put("pekko.management.http.hostname", host);
    values.put("pekko.management.http.port", managementPort);
    if (plan.join() == JoinPlan.Join.DISCOVERY) {
      String name = config.getString("kaon.cluster.name");
      Config discovery = config.getConfig("kaon.cluster.discovery");
      String bootstrap = "pekko.management.cluster.bootstrap.";
      values.put(bootstrap + "contact-point-discovery.required-contact-point-nr", discovery.getInt("required-contact-points"));
      values.put(bootstrap + "contact-point.fallback-port", managementPort);
      if (discovery.getString("method").trim().equals("config")) {
        values.put(bootstrap + "contact-point-discovery.discovery-method", "config");
        // A fixed list cannot fluctuate; the margin is only a wait here.
        values.put(bootstrap + "contact-point-discovery.stable-margin", "1 s");
        values.put(bootstrap + "contact-point-discovery.service-name", name);
        List<Map<String, Object>> endpoints = new ArrayList<>();
        for (String entry : discovery.getStringList("hosts")) {
          endpoints.add(endpoint(entry.trim(), managementPort));
        }
        values.put("pekko.discovery.config.services." + name + ".endpoints", endpoints);
      } else {
        values.put(bootstrap + "contact-point-discovery.discovery-method", "pekko-dns");
        values.put(bootstrap + "contact-point-discovery.service-name", discovery.getString("dns-name").trim());
      }
    }
    Config overrides = ConfigFactory.empty();
    for (Map.Entry<String, Object> e : values.entrySet()) {
      overrides = overrides.withValue(e.getKey(), ConfigValueFactory.fromAnyRef(e.getValue()));
    }
    return overrides.withFallback(config);
  }

  /** A config-discovery endpoint from "host" or "host:port" (the management port by default). */
  static Map<String, Object> endpoint(String entry, int defaultPort) {
    int colon = entry.lastIndexOf(':');
    boolean hasPort = colon > 0 && entry.indexOf(':') == colon && entry.substring(colon + 1).matches("\\d{1,5}");
    String host = hasPort ? entry.substring(0, colon) : entry;
    int port = hasPort ? Integer.parseInt(entry.substring(colon + 1)) : defaultPort;
    return Map.of("host", host, "port", port);
  }
}
