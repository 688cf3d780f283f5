package kaon.runtime;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * Where this node's Cassandra is: an external one named by {@code kaon.cassandra.contact-point},
 * or the local default, an embedded single node that is started here when it is not running.
 * Runs before the actor system exists, so that the journal finds Cassandra up.
 */
public final class CassandraConnection {

  private CassandraConnection() {}

  /**
   * Makes sure Cassandra is reachable (starting the embedded node if that is the configuration)
   * and returns {@code config} with the driver's contact point set.
   *
   * @param say where the one line about the embedded node goes
   */
  public static Config prepare(Config config, Consumer<String> say) {
    return prepare(config, NodeConfig.plan(config), say);
  }

  /**
   * As {@link #prepare(Config, Consumer)}, for a node whose join plan is made: the embedded node
   * is started only when {@code plan} allows it.
   */
  public static Config prepare(Config config, JoinPlan plan, Consumer<String> say) {
    List<String> contactPoints;
    if (plan.embedded()) {
      int port = config.getInt("kaon.cassandra.embedded-port");
      startEmbedded(port, say);
      contactPoints = List.of("127.0.0.1:" + port);
    } else if (!plan.contactPoints().isEmpty()) {
      contactPoints = plan.contactPoints();
    } else {
      throw new IllegalStateException(String.join("; ", plan.problems()));
    }
    return ConfigFactory.empty()
        .withValue("datastax-java-driver.basic.contact-points", ConfigValueFactory.fromIterable(contactPoints))
        .withFallback(config);
  }

  /**
   * Drops {@code keyspaces} from the Cassandra {@code config} names (the embedded node's port when
   * no contact point is set), for tests and tools that made throwaway keyspaces. The drops go out
   * at once and are waited for at most {@code budget} (a test JVM runs this on its way out, and
   * Surefire kills a fork that has not exited 30 s after it was told to): one after the other, 30
   * of them once took longer than that on a loaded 2-core machine. Never starts a node; a failure,
   * or keyspaces left because the budget ran out, go to {@code say}, they are not thrown.
   */
  public static void dropKeyspaces(Config config, Collection<String> keyspaces, Duration budget, Consumer<String> say) {
    if (keyspaces.isEmpty()) {
      return;
    }
    List<String> points = NodeConfig.contactPoints(config);
    String hostPort = points.isEmpty() ? "127.0.0.1:" + config.getInt("kaon.cassandra.embedded-port") : points.get(0);
    long deadline = System.nanoTime() + budget.toNanos();
    try (CqlSession session = CqlSession.builder()
        .addContactPoint(address(hostPort))
        .withLocalDatacenter(config.getString("datastax-java-driver.basic.load-balancing-policy.local-datacenter"))
        .build()) {
      Map<String, CompletableFuture<?>> drops = new TreeMap<>();
      for (String keyspace : keyspaces) {
        drops.put(keyspace, session.executeAsync(SimpleStatement.newInstance("DROP KEYSPACE IF EXISTS " + keyspace)
            .setTimeout(budget)).toCompletableFuture());
      }
      try {
        CompletableFuture.allOf(drops.values().toArray(CompletableFuture[]::new))
            .get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (ExecutionException | TimeoutException e) {
        List<String> left = drops.entrySet().stream()
            .filter(d -> !d.getValue().isDone() || d.getValue().isCompletedExceptionally()).map(Map.Entry::getKey).toList();
        say.accept("could not drop keyspaces " + left + " from " + hostPort + " within " + budget.toSeconds() + " s: "
            + (e instanceof TimeoutException ? "no answer" : e.getCause()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    } catch (RuntimeException e) {
      say.accept("could not drop keyspaces " + keyspaces + " from " + hostPort + ": " + e.getMessage());
    }
  }

  /**
   * The driver's address of a contact point written "host:port" (unresolved: the driver resolves
   * it when it connects).
   *
   * @throws IllegalArgumentException naming the point when it is not host:port
   */
  public static InetSocketAddress address(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || !hostPort.substring(colon + 1).matches("\\d{1,5}")) {
      throw new IllegalArgumentException("a Cassandra contact point must be HOST:PORT, was " + hostPort);
    }
    return InetSocketAddress.createUnresolved(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }

  /** The embedded node's launcher; {@code kaon.home} is the installation (set by the launcher). */
  static Path launcher() {
    return Path.of(System.getProperty("kaon.home", ".")).resolve("deploy/cassandra/cassandra.sh");
  }

  private static void startEmbedded(int port, Consumer<String> say) {
    Path script = launcher();
    if (!Files.isExecutable(script)) {
      throw new IllegalStateException("no Cassandra configured and the embedded launcher " + script
          + " is missing; set KAON_CASSANDRA_CONTACT_POINT=host:port to use an external Cassandra");
    }
    ProcessBuilder builder = new ProcessBuilder(script.toString(), "start").redirectErrorStream(true);
    builder.environment().put("KAON_CASSANDRA_PORT", Integer.toString(port));
    try {
      Process process = builder.start();
      String output = new String(process.getInputStream().readAllBytes()).trim();
      int code = process.waitFor();
      if (code != 0) {
        throw new IllegalStateException("the embedded Cassandra did not start (" + script + " start exited " + code + "):\n" + output);
      }
      // The launcher says in one line what it did: started, or found it running.
      say.accept(output.lines().reduce((a, b) -> b).orElse("cassandra: running on 127.0.0.1:" + port));
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + script + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while starting Cassandra", e);
    }
  }
}
