package kaon.actors.job;

import com.datastax.oss.driver.api.core.CqlSession;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.event.Logging;
import org.apache.pekko.event.LoggingAdapter;
import org.apache.pekko.persistence.cassandra.KeyspaceAndTableStatements;
import org.apache.pekko.persistence.cassandra.PluginSettings;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import scala.jdk.javaapi.FutureConverters;

/** Whether a job journal answers: what coordinators, their hosts and a node's readiness probe ask. */
public final class JournalProbe {

  private JournalProbe() {}

  /**
   * A trivial query through the journal's own session. The checkpoint store's session is another
   * connection pool, which may be back from an outage before the journal's is; a write through the
   * journal's before then fails.
   *
   * <p>The registry keeps one session per config path and runs the init of whoever asks first. A
   * node's readiness probe may ask before the journal plugin has started, so this asks with the
   * plugin's own init (its keyspaces and tables, as far as its autocreate settings say): which
   * of the two opens the session then makes no difference.
   */
  public static CompletionStage<?> ping(ActorSystem<?> system, String journalSession) {
    try {
      return CassandraSessionRegistry.get(system)
          .sessionFor(journalSession, session -> createAsThePluginWould(system, journalSession, session))
          .selectOne("SELECT release_version FROM system.local");
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /**
   * Whether the journal's table {@code table} ({@code keyspace.messages}) holds event {@code
   * sequenceNr} of {@code persistenceId}, whose partitions have {@code partitionSize} events.
   */
  public static CompletionStage<Boolean> eventExists(ActorSystem<?> system, String journalSession, String table,
      String persistenceId, long sequenceNr, long partitionSize) {
    if (sequenceNr <= 0) {
      return CompletableFuture.completedFuture(true);
    }
    try {
      return CassandraSessionRegistry.get(system)
          .sessionFor(journalSession, session -> createAsThePluginWould(system, journalSession, session))
          .selectOne("SELECT sequence_nr FROM " + table + " WHERE persistence_id = ? AND partition_nr = ? AND sequence_nr = ?",
              persistenceId, (sequenceNr - 1) / partitionSize, sequenceNr)
          .thenApply(java.util.Optional::isPresent);
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /**
   * The journal plugin's own init of its session. Built only when the registry runs it, once per
   * session: probes come every few hundred milliseconds and must not read the plugin's settings
   * each time.
   */
  private static CompletionStage<Done> createAsThePluginWould(ActorSystem<?> system, String journalSession, CqlSession session) {
    org.apache.pekko.actor.ActorSystem classic = Adapter.toClassic(system);
    KeyspaceAndTableStatements statements = new KeyspaceAndTableStatements(classic, journalSession,
        PluginSettings.apply(classic, classic.settings().config().getConfig(journalSession)));
    LoggingAdapter log = Logging.getLogger(classic, JournalProbe.class);
    return FutureConverters.asJava(statements.executeAllCreateKeyspaceAndTables(session, log, classic.dispatcher()));
  }
}
