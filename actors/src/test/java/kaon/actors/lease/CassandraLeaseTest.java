package kaon.actors.lease;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.coordination.lease.LeaseSettings;
import org.apache.pekko.coordination.lease.TimeoutSettings;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import scala.concurrent.Await;
import scala.concurrent.Future;
import scala.runtime.BoxedUnit;

/**
 * The job lease against the real Cassandra: one owner at a time, kept by heartbeats past its TTL,
 * free again when released or when its holder stops renewing, and lost (with the callback) when
 * Cassandra names another owner. Two actor systems are two owners, as two nodes are.
 */
class CassandraLeaseTest {

  private static final ActorTestKit first = ActorTestKit.create("lease-a");
  private static final ActorTestKit second = ActorTestKit.create("lease-b");
  private static final Duration TTL = Duration.ofSeconds(2);
  private static final Duration HEARTBEAT = Duration.ofMillis(400);
  private static final Config CONFIG = ConfigFactory.parseString(
      "keyspace = kaon_test_journal\nautocreate = on\nreplication-factor = 1");

  @AfterAll
  static void stop() {
    first.shutdownTestKit();
    second.shutdownTestKit();
  }

  private static CassandraLease lease(ActorTestKit kit, String name) {
    LeaseSettings settings = new LeaseSettings(name, "owner-" + kit.system().name(),
        new TimeoutSettings(
            scala.concurrent.duration.FiniteDuration.apply(HEARTBEAT.toMillis(), TimeUnit.MILLISECONDS),
            scala.concurrent.duration.FiniteDuration.apply(TTL.toMillis(), TimeUnit.MILLISECONDS),
            scala.concurrent.duration.FiniteDuration.apply(5, TimeUnit.SECONDS)),
        CONFIG);
    return new CassandraLease(settings, (ExtendedActorSystem) Adapter.toClassic(kit.system()));
  }

  private static String name() {
    return "test-" + UUID.randomUUID();
  }

  private static boolean await(Future<Object> future) throws Exception {
    return (Boolean) Await.result(future, scala.concurrent.duration.Duration.create(30, TimeUnit.SECONDS));
  }

  @Test
  void onlyOneOwnerHoldsALeaseUntilItIsReleased() throws Exception {
    String name = name();
    CassandraLease a = lease(first, name);
    CassandraLease b = lease(second, name);
    assertTrue(await(a.acquire()));
    assertTrue(a.checkLease());
    assertFalse(await(b.acquire()));
    assertFalse(b.checkLease());
    // Acquiring again what one holds is fine (a shard that started again).
    assertTrue(await(a.acquire()));
    assertTrue(await(a.release()));
    assertFalse(a.checkLease());
    assertTrue(await(b.acquire()));
    await(b.release());
  }

  @Test
  void heartbeatsKeepTheLeasePastItsTtl() throws Exception {
    String name = name();
    CassandraLease a = lease(first, name);
    CassandraLease b = lease(second, name);
    assertTrue(await(a.acquire()));
    first.createTestProbe().expectNoMessage(TTL.multipliedBy(2));
    assertTrue(a.checkLease());
    assertFalse(await(b.acquire()));
    await(a.release());
  }

  @Test
  void aHolderThatStopsRenewingLosesTheLeaseToTheNextOwnerAfterItsTtl() throws Exception {
    String name = name();
    ActorTestKit crashing = ActorTestKit.create("lease-crashing");
    CassandraLease b = lease(second, name);
    try {
      assertTrue(await(lease(crashing, name).acquire()));
      assertFalse(await(b.acquire()));
      // The waiting owner learns how long the holder's row lives: at most its TTL, whole seconds.
      Duration held = b.heldFor().toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertTrue(held.compareTo(Duration.ZERO) > 0 && held.compareTo(TTL) <= 0, "held for " + held);
    } finally {
      // No release: its heartbeats just stop, as when its node is killed.
      crashing.shutdownTestKit();
    }
    TestProbe<Object> probe = second.createTestProbe();
    probe.awaitAssert(TTL.multipliedBy(5), Duration.ofMillis(200), () -> {
      try {
        assertTrue(await(b.acquire()));
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      return null;
    });
    await(b.release());
    assertTrue(b.heldFor().toCompletableFuture().get(30, TimeUnit.SECONDS).isZero(), "a released lease lives no more");
  }

  @Test
  void aHolderLearnsThatAnotherOwnerTookTheLeaseAndStopsHoldingIt() throws Exception {
    String name = name();
    CassandraLease a = lease(first, name);
    TestProbe<Optional<Throwable>> lost = first.createTestProbe();
    assertTrue(await(a.acquire(reason -> {
      lost.getRef().tell(Optional.ofNullable(reason.isDefined() ? reason.get() : null));
      return BoxedUnit.UNIT;
    })));
    // Another owner where the holder's row is: what a second cluster would find after the
    // holder's row expired while it could not reach Cassandra.
    try (CqlSession cql = CqlSession.builder().addContactPoint(new InetSocketAddress("127.0.0.1", 9042))
        .withLocalDatacenter("datacenter1").build()) {
      cql.execute("UPDATE kaon_test_journal.leases SET owner = 'intruder' WHERE name = ?", name);
    }
    Optional<Throwable> reason = lost.receiveMessage(Duration.ofSeconds(10));
    assertInstanceOf(CassandraLease.LeaseTakenException.class, reason.orElseThrow());
    assertFalse(a.checkLease());
    assertFalse(a.confirm().toCompletableFuture().get(10, TimeUnit.SECONDS));
  }
}
