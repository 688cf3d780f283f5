package kaon.actors.chaos;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.chaos.RuntimeFaults.ChunkAction;
import kaon.actors.chaos.RuntimeFaults.Fault;
import kaon.actors.chaos.RuntimeFaults.Kind;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class RuntimeFaultsTest {

  private static final ActorTestKit testKit = ActorTestKit.create(
      ConfigFactory.parseString("kaon.chaos.runtime-faults.enabled = on").withFallback(ConfigFactory.load()));
  private static final Duration LONG = Duration.ofMinutes(10);

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private static Fault fault(Kind kind, String job, int rank, long generation, double probability, long maxStrikes) {
    return new Fault(kind, job, rank, generation, probability, Duration.ofMillis(150), maxStrikes, LONG, 42);
  }

  @Test
  void offUnlessEnabledAndThenNothingStrikes() {
    RuntimeFaults off = new RuntimeFaults(false);
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> off.arm(fault(Kind.CHUNK_DROP, "", -1, -1, 1, 0)));
    assertTrue(e.getMessage().contains("kaon.chaos.runtime-faults.enabled"), e.getMessage());
    assertEquals(ChunkAction.SEND, off.chunkAction("job", 1, 0, true));
    assertEquals(0f, off.poison("job", 0, 1));
    assertEquals(null, off.checkpointWriteFailure("job"));
  }

  @Test
  void aFaultStrikesOnlyItsJobAndRankAndAtMostItsLimit() {
    RuntimeFaults faults = new RuntimeFaults(true);
    faults.arm(fault(Kind.CHUNK_DROP, "job-a", 1, -1, 1, 2));
    assertEquals(ChunkAction.SEND, faults.chunkAction("job-b", 1, 1, true));
    assertEquals(ChunkAction.SEND, faults.chunkAction("job-a", 1, 0, true));
    assertEquals(ChunkAction.DROP, faults.chunkAction("job-a", 1, 1, true));
    assertEquals(ChunkAction.DROP, faults.chunkAction("job-a", 1, 1, true));
    assertEquals(ChunkAction.SEND, faults.chunkAction("job-a", 1, 1, true), "spent after 2 strikes");
    RuntimeFaults.Armed armed = faults.armed().get(0);
    assertEquals(2, armed.strikes());
    assertTrue(armed.spent());
  }

  @Test
  void damageStrikesOnlyChunksThatCrossAWire() {
    RuntimeFaults faults = new RuntimeFaults(true);
    faults.arm(fault(Kind.CHUNK_CORRUPT, "", -1, -1, 1, 1));
    assertEquals(ChunkAction.SEND, faults.chunkAction("job", 1, 0, false));
    assertEquals(0, faults.armed().get(0).strikes());
    assertEquals(ChunkAction.CORRUPT, faults.chunkAction("job", 1, 0, true));
  }

  @Test
  void aPoisonStrikesOnceAndOnlyItsGeneration() {
    RuntimeFaults faults = new RuntimeFaults(true);
    faults.arm(fault(Kind.POISON_LARGE, "job", 2, 5, 1, 0));
    faults.arm(fault(Kind.POISON_NAN, "job", 0, -1, 1, 0));
    assertEquals(0f, faults.poison("job", 2, 4), "another generation of the rank");
    assertEquals(1e30f, faults.poison("job", 2, 5));
    assertEquals(0f, faults.poison("job", 2, 5), "once");
    assertTrue(Float.isNaN(faults.poison("job", 0, 9)));
    assertEquals(0f, faults.poison("job", 0, 9));
  }

  @Test
  void aProbabilityStrikesAboutThatShareReproduciblyFromTheSeed() {
    int[] struck = new int[2];
    for (int run = 0; run < 2; run++) {
      RuntimeFaults faults = new RuntimeFaults(true);
      faults.arm(fault(Kind.CHUNK_DELAY, "", -1, -1, 0.1, 0));
      for (int i = 0; i < 10_000; i++) {
        if (faults.chunkAction("job", 1, 0, true) == ChunkAction.DELAY) {
          struck[run]++;
        }
      }
    }
    assertEquals(struck[0], struck[1]);
    assertTrue(struck[0] > 850 && struck[0] < 1150, struck[0] + " of 10000");
  }

  @Test
  void checkpointWritesFailWhileArmedAndAClearDisarmsEverything() {
    RuntimeFaults faults = new RuntimeFaults(true);
    faults.arm(fault(Kind.CHECKPOINT_WRITE, "job", -1, -1, 1, 0));
    assertTrue(faults.checkpointWriteFailure("job").contains("runtime fault"));
    assertEquals(null, faults.checkpointWriteFailure("other"));
    assertEquals(1, faults.clear());
    assertEquals(null, faults.checkpointWriteFailure("job"));
    assertTrue(faults.armed().isEmpty());
  }

  // ------------------------------------------------------------------ on a ring

  private static List<ActorRef<RingMessage>> ring(String job, int worldSize) {
    AllReduceSettings settings = new AllReduceSettings(3, Duration.ofMillis(1500), Duration.ofMillis(1500), 20);
    List<ActorRef<RingMessage>> peers = new ArrayList<>();
    for (int rank = 0; rank < worldSize; rank++) {
      peers.add(testKit.spawn(AllReducePeer.create(job, 1, rank, worldSize, settings)));
    }
    peers.forEach(p -> p.tell(new AllReducePeer.Connect(peers)));
    return peers;
  }

  private static List<StatusReply<AllReducePeer.Reduced>> reduce(List<ActorRef<RingMessage>> peers, long step) {
    List<TestProbe<StatusReply<AllReducePeer.Reduced>>> probes = new ArrayList<>();
    for (int r = 0; r < peers.size(); r++) {
      TestProbe<StatusReply<AllReducePeer.Reduced>> probe = testKit.createTestProbe();
      probes.add(probe);
      float[] buffer = new float[10];
      java.util.Arrays.fill(buffer, r + 1);
      peers.get(r).tell(new AllReducePeer.Reduce(step, buffer, probe.getRef()));
    }
    List<StatusReply<AllReducePeer.Reduced>> replies = new ArrayList<>();
    probes.forEach(p -> replies.add(p.receiveMessage(Duration.ofSeconds(30))));
    return replies;
  }

  @Test
  void delayedChunksStillSumExactlyAndADroppedOneFailsTheRoundAtItsDeadline() {
    RuntimeFaults faults = RuntimeFaults.get(testKit.system());
    faults.arm(fault(Kind.CHUNK_DELAY, "job-delayed", 1, -1, 1, 0));
    List<ActorRef<RingMessage>> delayed = ring("job-delayed", 3);
    for (StatusReply<AllReducePeer.Reduced> reply : reduce(delayed, 0)) {
      assertTrue(reply.isSuccess(), () -> String.valueOf(reply.getError()));
      float[] six = new float[10];
      java.util.Arrays.fill(six, 6);
      assertArrayEquals(six, reply.getValue().buffer());
    }
    faults.arm(fault(Kind.CHUNK_DROP, "job-dropped", 0, -1, 1, 1));
    List<StatusReply<AllReducePeer.Reduced>> replies = reduce(ring("job-dropped", 3), 0);
    assertTrue(replies.stream().anyMatch(r -> r.isError() && r.getError().getMessage().contains("missed its deadline")),
        replies::toString);
    assertTrue(faults.armed().stream().allMatch(a -> a.strikes() > 0), faults.armed()::toString);
    faults.clear();
  }
}
