package kaon.runtime.cli;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import kaon.actors.checkpoint.CheckpointSchema;
import kaon.actors.lease.CassandraLease;
import kaon.runtime.CassandraConnection;
import kaon.runtime.NodeConfig;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.persistence.cassandra.KeyspaceAndTableStatements;
import org.apache.pekko.persistence.cassandra.PluginSettings;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code kaon admin}: operator tasks that need no running cluster. */
@Command(name = "admin", mixinStandardHelpOptions = true, description = "Operator tasks on the cluster's Cassandra.",
    subcommands = {AdminCommand.ApplySchema.class})
final class AdminCommand {

  /**
   * {@code kaon admin apply-schema}: creates the keyspaces and tables a cluster uses (the jobs'
   * journal and snapshots, the leases, the checkpoints and models) with the replication the
   * operator chooses. Idempotent: everything is {@code IF NOT EXISTS}, so it runs before every
   * upgrade too. On VMs nodes create nothing themselves (autocreate off): a keyspace created by
   * the first node to start would get whatever replication that node's defaults say.
   */
  @Command(name = "apply-schema", mixinStandardHelpOptions = true,
      description = "Create Kaon's keyspaces and tables (idempotent) with the given replication.",
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:the schema is in place", "2:invalid command line", "3:Cassandra refused or did not answer"})
  static final class ApplySchema implements Callable<Integer> {

    @Spec CommandSpec command;

    @Option(names = "--replication", required = true, paramLabel = "SPEC",
        description = "DC:N[,DC:N...] for NetworkTopologyStrategy (production), or simple:N for SimpleStrategy.")
    String replication;

    @Option(names = "--cassandra", split = ",", paramLabel = "HOST:PORT",
        description = "Contact points (default: kaon.cassandra.contact-points of the node's configuration).")
    List<String> cassandra;

    @Override
    public Integer call() {
      Replication parsed = Replication.parse(replication);
      if (parsed == null) {
        throw new CommandLine.ParameterException(command.commandLine(),
            "--replication must be DC:N[,DC:N...] or simple:N with N >= 1, was " + replication);
      }
      Config config = ConfigFactory.load();
      List<String> points = cassandra != null ? cassandra : NodeConfig.contactPoints(config);
      if (points.isEmpty()) {
        throw new CommandLine.ParameterException(command.commandLine(),
            "no Cassandra named: give --cassandra HOST:PORT or set kaon.cassandra.contact-points");
      }
      List<InetSocketAddress> addresses = new ArrayList<>();
      for (String point : points) {
        try {
          addresses.add(CassandraConnection.address(point));
        } catch (IllegalArgumentException e) {
          throw new CommandLine.ParameterException(command.commandLine(), "--cassandra must be HOST:PORT, was " + point);
        }
      }
      List<String> statements = statements(config, parsed);
      PrintWriter out = command.commandLine().getOut();
      String dc = parsed.simple() ? config.getString("kaon.cassandra.local-datacenter") : parsed.factors().get(0).split(":")[0];
      try (CqlSession session = CqlSession.builder().addContactPoints(addresses).withLocalDatacenter(dc).build()) {
        for (String statement : statements) {
          // DDL waits for schema agreement in the driver before the next statement runs.
          session.execute(SimpleStatement.newInstance(statement).setTimeout(Duration.ofSeconds(60)));
        }
      }
      out.printf("kaon admin: schema applied (%d statements, replication %s) on %s%n", statements.size(), replication,
          String.join(",", points));
      return 0;
    }

    /** The journal plugin's own statements (with the replication set), then Kaon's tables. */
    static List<String> statements(Config config, Replication replication) {
      String journal = "pekko.persistence.cassandra.journal.";
      String snapshot = "pekko.persistence.cassandra.snapshot.";
      Config withReplication = config;
      for (String section : List.of(journal, snapshot)) {
        withReplication = withReplication
            .withValue(section + "replication-strategy",
                ConfigValueFactory.fromAnyRef(replication.simple() ? "SimpleStrategy" : "NetworkTopologyStrategy"))
            .withValue(section + "replication-factor", ConfigValueFactory.fromAnyRef(replication.simple() ? replication.factor() : 1))
            .withValue(section + "data-center-replication-factors", ConfigValueFactory.fromIterable(replication.factors()));
      }
      // The plugin builds its statements from an actor system's settings; a local one, never started
      // as a cluster member, is enough.
      ActorSystem system = ActorSystem.create("kaon-admin", ConfigFactory.parseString(
          "pekko.actor.provider = local\npekko.persistence.journal.auto-start-journals = []\n"
              + "pekko.persistence.snapshot-store.auto-start-snapshot-stores = []\npekko.loglevel = WARNING")
          .withFallback(withReplication));
      try {
        KeyspaceAndTableStatements plugin = new KeyspaceAndTableStatements(system, "pekko.persistence.cassandra",
            PluginSettings.apply(system));
        List<String> all = new ArrayList<>();
        all.add(plugin.createJournalKeyspaceStatement());
        all.addAll(plugin.getCreateJournalTablesStatements());
        all.add(plugin.createSnapshotKeyspaceStatement());
        all.addAll(plugin.getCreateSnapshotTablesStatements());
        String journalKeyspace = withReplication.getString(journal + "keyspace");
        all.add(CassandraLease.table(journalKeyspace));
        String checkpoints = withReplication.getString("kaon.checkpoint.keyspace");
        all.add("CREATE KEYSPACE IF NOT EXISTS " + checkpoints + " WITH replication = " + replication.cql());
        all.addAll(CheckpointSchema.tables(checkpoints));
        return all;
      } finally {
        system.terminate();
      }
    }
  }

  /**
   * A keyspace replication: SimpleStrategy with {@code factor} replicas, or NetworkTopologyStrategy
   * with {@code factors} ("DC:N" each).
   */
  record Replication(boolean simple, int factor, List<String> factors) {

    /** Parsed from "simple:N" or "DC:N[,DC:N...]"; null when malformed. */
    static Replication parse(String spec) {
      if (spec.matches("simple:[1-9]\\d*")) {
        return new Replication(true, Integer.parseInt(spec.substring("simple:".length())), List.of());
      }
      List<String> factors = new ArrayList<>();
      for (String part : spec.split(",")) {
        if (!part.matches("[A-Za-z0-9_.-]+:[1-9]\\d*")) {
          return null;
        }
        factors.add(part);
      }
      return new Replication(false, 0, List.copyOf(factors));
    }

    /** The CQL replication map. */
    String cql() {
      if (simple) {
        return "{'class': 'SimpleStrategy', 'replication_factor': " + factor + "}";
      }
      StringBuilder map = new StringBuilder("{'class': 'NetworkTopologyStrategy'");
      for (String f : factors) {
        int colon = f.lastIndexOf(':');
        map.append(", '").append(f, 0, colon).append("': ").append(f.substring(colon + 1));
      }
      return map.append('}').toString();
    }
  }
}
