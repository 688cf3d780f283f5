package kaon.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/** Configuration shared by the tests that start a real node in their own JVM. */
public final class TestNodes {

  private TestNodes() {}

  /** Keyspaces handed out by {@link #withOwnJournal}; dropped when this JVM exits. */
  private static final Set<String> KEYSPACES = ConcurrentHashMap.newKeySet();

  static {
    // Otherwise they stay in the local Cassandra for good. Runs of the suite on one machine piled
    // up ~300 of them (some 1,500 tables), and the local node (512 MB heap) died under them.
    Runtime.getRuntime().addShutdownHook(new Thread(
        () -> CassandraConnection.dropKeyspaces(ConfigFactory.load(), KEYSPACES, java.time.Duration.ofSeconds(20), System.err::println), "kaon-test-keyspaces"));
  }

  /**
   * The same configuration with journal keyspaces no other run uses. Jobs are remembered entities:
   * a test node stopped with a job still running would otherwise leave it to be resumed by the
   * next node on the default keyspaces, which may be a user's {@code ./kaon train} or another test.
   */
  public static Config withOwnJournal(Config config) {
    String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    KEYSPACES.add("kaon_test_journal_" + suffix);
    KEYSPACES.add("kaon_test_snapshot_" + suffix);
    return config
        .withValue("pekko.persistence.cassandra.journal.keyspace", ConfigValueFactory.fromAnyRef("kaon_test_journal_" + suffix))
        .withValue("pekko.persistence.cassandra.snapshot.keyspace", ConfigValueFactory.fromAnyRef("kaon_test_snapshot_" + suffix));
  }
}
