package kaon.actors.lease;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.datastax.oss.driver.api.core.cql.Statement;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.coordination.lease.LeaseSettings;
import org.apache.pekko.coordination.lease.scaladsl.Lease;
import org.apache.pekko.coordination.lease.scaladsl.LeaseProvider;
import org.apache.pekko.event.Logging;
import org.apache.pekko.event.LoggingAdapter;
import org.apache.pekko.stream.connectors.cassandra.CassandraSessionSettings;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSession;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import scala.Function1;
import scala.Option;
import scala.concurrent.Future;
import scala.jdk.javaapi.FutureConverters;
import scala.runtime.BoxedUnit;

/**
 * A Pekko coordination {@link Lease} kept in a Cassandra row with lightweight transactions: at
 * most one owner holds a lease name at a time, in any number of clusters that share the Cassandra
 * cluster. Each job's entity takes one before it starts the job's coordinator ({@code JobHost}),
 * so that of two clusters that both run a job (a split brain) only one starts its coordinator.
 *
 * <p>The row carries the owner and a TTL of {@code heartbeat-timeout}. The holder renews it every
 * {@code heartbeat-interval} with a conditional update ({@code IF owner = me}); if the holder dies,
 * the row expires and another owner may insert it ({@code IF NOT EXISTS}). The owner is the node's
 * host:port plus its incarnation (the cluster uid), so that a node started again at the same
 * address does not inherit the leases of the one that crashed while it may still be running
 * elsewhere (a hung JVM, the same address in another network namespace).
 *
 * <p>The lease is <em>lost</em> (the callback runs, the job stops its coordinator) only when Cassandra
 * says another owner has it. A renewal that fails (Cassandra unreachable) loses nothing by itself:
 * nobody else can take the lease through an unreachable Cassandra either, and everything a
 * coordinator could corrupt lives there. What it does change is {@link #checkLease()}: it is true
 * only while the last confirmation (counted from when its request was sent) is younger than the
 * TTL minus one heartbeat, the time in which nobody else can have taken the row. Writers check it
 * before each write and confirm the lease again ({@link #confirm()}) when it is false.
 */
public final class CassandraLease extends Lease {

  private final LoggingAdapter log;
  private final ExtendedActorSystem system;
  private final CassandraSession session;
  private final String keyspace;
  private final boolean autocreate;
  private final int replicationFactor;
  private final String owner;
  private final String name;
  private final Duration ttl;
  private final Duration interval;
  private final Duration operationTimeout;

  private volatile Statements statements;
  /** Whether this owner believes it holds the lease (acquired, not released, not seen taken). */
  private volatile boolean held;
  /** {@link System#nanoTime()} at which the last successful acquire or renewal was sent. */
  private volatile long confirmedAt;
  private volatile Function1<Option<Throwable>, BoxedUnit> lostCallback;
  private Cancellable heartbeat;
  /** A heartbeat's renewal is in flight. */
  private final AtomicBoolean beating = new AtomicBoolean();

  private record Statements(PreparedStatement insert, PreparedStatement renew, PreparedStatement delete,
      PreparedStatement remaining) {}

  /** Made by Pekko's {@link LeaseProvider} from the lease's configuration. */
  public CassandraLease(LeaseSettings settings, ExtendedActorSystem system) {
    super(settings);
    this.system = system;
    this.log = Logging.getLogger(system, CassandraLease.class);
    this.session = CassandraSessionRegistry.get(system).sessionFor(CassandraSessionSettings.create());
    this.keyspace = settings.leaseConfig().getString("keyspace");
    this.autocreate = settings.leaseConfig().getBoolean("autocreate");
    this.replicationFactor = settings.leaseConfig().getInt("replication-factor");
    this.name = settings.leaseName();
    this.owner = settings.ownerName() + "#" + Cluster.get(system).selfUniqueAddress().longUid();
    this.ttl = settings.timeoutSettings().getHeartbeatTimeout();
    this.interval = settings.timeoutSettings().getHeartbeatInterval();
    this.operationTimeout = settings.timeoutSettings().getOperationTimeout();
    if (!keyspace.matches("[a-zA-Z][a-zA-Z0-9_]{0,47}")) {
      throw new IllegalArgumentException("lease keyspace is not a valid keyspace name: " + keyspace);
    }
    if (interval.multipliedBy(2).compareTo(ttl) >= 0) {
      throw new IllegalArgumentException("lease heartbeat-interval (" + interval + ") must be under half its heartbeat-timeout ("
          + ttl + "): the holder confirms it at least twice per TTL");
    }
  }

  /**
   * The lease of job {@code jobId} for this node, with the lease configuration at {@code
   * configPath}; the provider keeps one instance per name, path and owner. Empty if that
   * configuration is not a Cassandra lease.
   */
  public static Optional<CassandraLease> forJob(
      org.apache.pekko.actor.typed.ActorSystem<?> system, String configPath, String jobId) {
    org.apache.pekko.actor.ActorSystem classic = org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system);
    String ownerName = Cluster.get(classic).selfAddress().hostPort();
    Lease lease = LeaseProvider.get(classic).getLease(classic.name() + "-job-" + jobId, configPath, ownerName);
    return lease instanceof CassandraLease c ? Optional.of(c) : Optional.empty();
  }

  /**
   * Takes the lease for Java callers: true once it is this owner's; {@code onLost} runs (on
   * another thread) if another owner takes it later.
   */
  public CompletionStage<Boolean> take(java.util.function.Consumer<Throwable> onLost) {
    return FutureConverters.asJava(acquire(reason -> {
      onLost.accept(reason.isDefined() ? reason.get() : null);
      return BoxedUnit.UNIT;
    })).thenApply(ours -> (Boolean) ours);
  }

  /** Gives the lease up, for Java callers; it may be taken again. */
  public CompletionStage<Boolean> giveUp() {
    return FutureConverters.asJava(release()).thenApply(released -> (Boolean) released);
  }

  @Override
  public Future<Object> acquire() {
    return acquire(null);
  }

  @Override
  public Future<Object> acquire(Function1<Option<Throwable>, BoxedUnit> leaseLostCallback) {
    lostCallback = leaseLostCallback;
    // Counted from when the insert is sent, after its statements are prepared: the first
    // preparation of a node can take seconds, and counting it would leave the lease stale at once.
    CompletionStage<Boolean> acquired = prepared().thenCompose(st -> {
      long sent = System.nanoTime();
      return claim(st).thenApply(ours -> {
        if (ours) {
          confirmedAt = sent;
          held = true;
          startHeartbeat();
        }
        return ours;
      });
    });
    return toScala(acquired);
  }

  @Override
  public Future<Object> release() {
    stopHeartbeat();
    held = false;
    return toScala(prepared().thenCompose(st -> execute(st.delete().bind(name, owner))).thenApply(AsyncResultSet::wasApplied));
  }

  /**
   * True while nobody else can hold the lease: it was confirmed less than the TTL minus one
   * heartbeat ago. False while Cassandra cannot be reached for longer than that, though the lease
   * may still be ours; {@link #confirm()} tells.
   */
  @Override
  public boolean checkLease() {
    return held && System.nanoTime() - confirmedAt < ttl.minus(interval).toNanos();
  }

  /**
   * Renews the lease now: true if it is still ours (then {@link #checkLease()} is true for
   * another TTL), false if it is not held or another owner has it (the lost callback has run).
   * Fails when Cassandra cannot be reached.
   */
  public CompletionStage<Boolean> confirm() {
    if (!held) {
      return CompletableFuture.completedFuture(false);
    }
    return renew();
  }

  /**
   * How long the lease's row still lives, as Cassandra counts it: whole seconds, so a row that
   * expires within the next second says 1 s; zero when nobody holds the lease. A dead holder's
   * row lives out its TTL, and a waiting owner that knows when can try again right then instead
   * of a retry interval later (a coordinator's failover waits for exactly this).
   */
  public CompletionStage<Duration> heldFor() {
    return prepared().thenCompose(st -> execute(st.remaining().bind(name)))
        .thenApply(rs -> {
          Row row = rs.one();
          return row == null || row.isNull(0) ? Duration.ZERO : Duration.ofSeconds(row.getInt(0));
        });
  }

  /** The name of this lease, and its owner as written in Cassandra. */
  @Override
  public String toString() {
    return "lease " + name + " of " + owner;
  }

  // ------------------------------------------------------------------ the row

  /** Takes the row if it is free or already ours; true if it is ours now. */
  private CompletionStage<Boolean> claim() {
    return prepared().thenCompose(this::claim);
  }

  private CompletionStage<Boolean> claim(Statements st) {
    return execute(st.insert().bind(name, owner, ttlSeconds())).thenCompose(rs -> {
      if (rs.wasApplied()) {
        return CompletableFuture.completedFuture(true);
      }
      String current = ownerOf(rs);
      if (owner.equals(current)) {
        // Ours already (a job entity that stopped and started again): renew rather than wait for it
        // to expire.
        return execute(st.renew().bind(ttlSeconds(), owner, name, owner)).thenApply(AsyncResultSet::wasApplied);
      }
      log.info("{}: held by {}", this, current);
      return CompletableFuture.completedFuture(false);
    });
  }

  private CompletionStage<Boolean> renew() {
    return prepared().thenCompose(st -> {
      long sent = System.nanoTime();
      return execute(st.renew().bind(ttlSeconds(), owner, name, owner)).thenCompose(rs -> {
        if (rs.wasApplied()) {
          return CompletableFuture.completedFuture(true);
        }
        String current = ownerOf(rs);
        if (current == null) {
          // The row expired (Cassandra was out of reach for longer than the TTL): take it again,
          // unless someone else took it meanwhile. A confirmation and a heartbeat of this owner
          // that both find it expired both insert; the one that comes second finds the row its
          // own, which a bare insert would have called taken (and stopped a healthy coordinator).
          return claim(st);
        }
        return CompletableFuture.completedFuture(false);
      }).thenApply(ours -> {
        if (ours) {
          confirmedSince(sent);
        } else {
          lost(new LeaseTakenException(this + " is now held by another owner"));
        }
        return ours;
      });
    });
  }

  /** A renewal sent at {@code sent} succeeded; a slower one answering after a newer does not count back. */
  private synchronized void confirmedSince(long sent) {
    if (held && sent - confirmedAt > 0) {
      confirmedAt = sent;
    }
  }

  private void lost(Throwable why) {
    boolean was = held;
    held = false;
    stopHeartbeat();
    Function1<Option<Throwable>, BoxedUnit> callback = lostCallback;
    if (was) {
      log.warning("{}: lost ({})", this, why.getMessage());
      if (callback != null) {
        callback.apply(Option.apply(why));
      }
    }
  }

  private static String ownerOf(AsyncResultSet rs) {
    Row row = rs.one();
    return row != null && row.getColumnDefinitions().contains("owner") ? row.getString("owner") : null;
  }

  private int ttlSeconds() {
    return (int) Math.max(1, ttl.toSeconds());
  }

  // ------------------------------------------------------------------ heartbeat

  private synchronized void startHeartbeat() {
    if (heartbeat != null) {
      heartbeat.cancel();
    }
    scala.concurrent.duration.FiniteDuration every =
        scala.concurrent.duration.FiniteDuration.apply(interval.toMillis(), TimeUnit.MILLISECONDS);
    // At a fixed rate, not a fixed delay: a renewal that takes long (an LWT on a busy Cassandra
    // node) must not also push the next one back, or two slow ones in a row outlast the time
    // checkLease() allows. One at a time: a beat while one is in flight is skipped.
    heartbeat = system.scheduler().scheduleAtFixedRate(every, every, this::beat, system.dispatcher());
  }

  private synchronized void stopHeartbeat() {
    if (heartbeat != null) {
      heartbeat.cancel();
      heartbeat = null;
    }
  }

  private void beat() {
    if (!held || !beating.compareAndSet(false, true)) {
      return;
    }
    renew().whenComplete((ours, error) -> {
      beating.set(false);
      if (error != null) {
        // Kept: see the class comment. checkLease() turns false once the TTL runs out unconfirmed.
        log.warning("{}: renewal failed ({}); {} ms since it was last confirmed", this, error.getMessage(),
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - confirmedAt));
      }
    });
  }

  // ------------------------------------------------------------------ Cassandra

  private CompletionStage<AsyncResultSet> execute(Statement<?> statement) {
    return session.underlying().thenCompose(s -> s.executeAsync(statement
        .setConsistencyLevel(ConsistencyLevel.QUORUM)
        .setSerialConsistencyLevel(ConsistencyLevel.SERIAL)
        .setTimeout(operationTimeout)));
  }

  private CompletionStage<Statements> prepared() {
    Statements ready = statements;
    return ready != null ? CompletableFuture.completedFuture(ready) : session.underlying().thenCompose(this::prepare);
  }

  private CompletionStage<Statements> prepare(CqlSession s) {
    CompletionStage<?> schema = autocreate
        ? s.executeAsync("CREATE KEYSPACE IF NOT EXISTS " + keyspace + " WITH replication = "
                + "{'class': 'SimpleStrategy', 'replication_factor': " + replicationFactor + "}")
            .thenCompose(r -> s.executeAsync(SimpleStatement.newInstance(table(keyspace))))
        : CompletableFuture.completedFuture(null);
    return schema.thenCompose(x -> {
      CompletableFuture<PreparedStatement> insert = s.prepareAsync(
          "INSERT INTO " + keyspace + ".leases (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> renew = s.prepareAsync(
          "UPDATE " + keyspace + ".leases USING TTL ? SET owner = ? WHERE name = ? IF owner = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> delete = s.prepareAsync(
          "DELETE FROM " + keyspace + ".leases WHERE name = ? IF owner = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> remaining = s.prepareAsync(
          "SELECT TTL(owner) FROM " + keyspace + ".leases WHERE name = ?").toCompletableFuture();
      return CompletableFuture.allOf(insert, renew, delete, remaining).thenApply(y -> {
        Statements made = new Statements(insert.join(), renew.join(), delete.join(), remaining.join());
        statements = made;
        return made;
      });
    });
  }

  /** The lease table; also in {@code deploy/cassandra/schema.cql}. */
  public static String table(String keyspace) {
    return "CREATE TABLE IF NOT EXISTS " + keyspace + ".leases (name text PRIMARY KEY, owner text)";
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static Future<Object> toScala(CompletionStage<Boolean> stage) {
    return (Future) FutureConverters.asScala(stage);
  }

  /** Another owner holds the lease. */
  public static final class LeaseTakenException extends RuntimeException {
    LeaseTakenException(String message) {
      super(message, null, false, false);
    }
  }
}
