package kaon.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import java.util.UUID;

/** Configuration shared by the tests that start a real node in their own JVM. */
public final class TestNodes {

  private TestNodes() {}

  /**
   * The same configuration with journal keyspaces no other run uses. Jobs are remembered entities:
   * a test node stopped with a job still running would otherwise leave it to be resumed by the
   * next node on the default keyspaces, which may be a user's {@code ./kaon train} or another test.
   */
  public static Config withOwnJournal(Config config) {
    String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    return config
        .withValue("pekko.persistence.cassandra.journal.keyspace", ConfigValueFactory.fromAnyRef("kaon_test_journal_" + suffix))
        .withValue("pekko.persistence.cassandra.snapshot.keyspace", ConfigValueFactory.fromAnyRef("kaon_test_snapshot_" + suffix));
  }
}
