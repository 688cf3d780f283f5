package kaon.actors.liveness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.stream.StreamSupport;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Three cluster nodes in this JVM, each with its liveness downing. The cluster runs without a
 * split-brain resolver, and the node whose liveness listener closes keeps running and sending
 * heartbeats: nothing but liveness downing can down it.
 */
class LivenessDowningClusterTest {

  private static final Duration WAIT = Duration.ofSeconds(30);
  private List<ActorTestKit> nodes = List.of();

  private static Config config() {
    return ConfigFactory.parseString("""
            pekko.actor.provider = cluster
            pekko.remote.artery.canonical.hostname = "127.0.0.1"
            pekko.remote.artery.canonical.port = 0
            pekko.cluster.jmx.multi-mbeans-in-same-jvm = on
            pekko.cluster.downing-provider-class = ""
            """)
        .withFallback(ConfigFactory.load("application-test"));
  }

  /**
   * All three at once, each given 30 s: one after another, the first to leave waited for the
   * others' acknowledgements and the downed one's shutdown, and once outlived the test kit's 10 s.
   */
  @AfterEach
  void stop() throws Exception {
    nodes.forEach(node -> node.system().terminate());
    for (ActorTestKit node : nodes) {
      node.system().getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void aMemberWhoseProcessIsSeenToEndIsDownedThoughItsHeartbeatsGoOn() {
    nodes = List.of(ActorTestKit.create("downing", config()), ActorTestKit.create("downing", config()),
        ActorTestKit.create("downing", config()));
    Address first = Cluster.get(nodes.get(0).system()).selfMember().address();
    for (ActorTestKit node : nodes) {
      Cluster.get(node.system()).manager().tell(Join.create(first));
      node.spawn(LivenessDowning.create(), "liveness-downing");
    }
    ActorTestKit a = nodes.get(0);
    ActorTestKit c = nodes.get(2);
    NodeLiveness.Endpoint ofC = NodeLiveness.get(c.system()).endpoint();
    await("three members up", () -> up(a) == 3);
    // Each of the others watches c once it found c's agent and asked it for its endpoint.
    for (ActorTestKit watcher : nodes.subList(0, 2)) {
      await("c watched", () -> NodeLiveness.get(watcher.system()).watchState(ofC) == NodeLiveness.WatchState.VERIFIED);
    }
    NodeLiveness.get(c.system()).close(); // as c's process ending would; its actor system runs on
    Address cAddress = Cluster.get(c.system()).selfMember().address();
    await("c downed and removed", () -> StreamSupport.stream(Cluster.get(a.system()).state().getMembers().spliterator(), false)
        .noneMatch(m -> m.address().equals(cAddress)));
    assertEquals(2, up(a), "a and b stay up");
  }

  private static long up(ActorTestKit node) {
    return StreamSupport.stream(Cluster.get(node.system()).state().getMembers().spliterator(), false)
        .map(Member::status).filter(s -> s == MemberStatus.up()).count();
  }

  /** Waits on {@code condition}, checked every 100 ms (the test kit's awaitAssert). */
  private void await(String what, java.util.function.BooleanSupplier condition) {
    nodes.get(0).createTestProbe().awaitAssert(WAIT, () -> {
      assertTrue(condition.getAsBoolean(), what + " did not happen within " + WAIT);
      return null;
    });
  }
}
