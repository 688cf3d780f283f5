package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import kaon.protocol.v1.ClusterServiceClient;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * A node that hangs long enough for the cluster to down it exits, when it wakes, with the code a
 * supervisor (systemd's {@code Restart=on-failure}, {@code cluster.sh start}) restarts it on,
 * instead of living on outside the cluster or exiting as if it had been asked to stop.
 */
class DownedNodeExitTest {

  private static final Duration WAIT = Duration.ofMinutes(2);

  @Test
  void aNodeTheClusterDownedExitsWithCodeFour() throws Exception {
    String token = UUID.randomUUID().toString();
    String bearer = "Bearer " + token;
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    // Of two nodes, keep-majority keeps the one with the lower address: the seed must be it.
    int first = KaonProcess.freePort();
    int second = KaonProcess.freePort();
    int seedPort = Math.min(first, second);
    int otherPort = Math.max(first, second);
    int api = KaonProcess.freePort();
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess seed = KaonProcess.start("downed-seed", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", Integer.toString(api), "--seed", "127.0.0.1:" + seedPort);
        KaonProcess other = KaonProcess.start("downed-other", env, "node", "--devices", "1", "--port", Integer.toString(otherPort),
            "--api-port", "0", "--seed", "127.0.0.1:" + seedPort)) {
      ClusterServiceClient cluster = ClusterServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client).withTls(false), client);
      KaonProcess.awaitMembersUp(cluster, bearer, 2, WAIT);
      other.hang();
      try {
        // Unreachable after ~3 s, downed after stable-after (4 s) more; then removed.
        KaonProcess.awaitMembers(cluster, bearer,
            members -> members.stream().noneMatch(m -> m.getAddress().endsWith(":" + otherPort)),
            "the hung node removed from the members", WAIT);
      } finally {
        other.resume();
      }
      assertEquals(4, other.awaitExit(WAIT), "exit code of the downed node");
      seed.stop();
    } finally {
      client.terminate();
    }
  }
}
