package kaon.actors.allreduce;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AllReducePeerTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Duration GENEROUS = Duration.ofSeconds(30);
  private static int jobCounter;

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private static AllReduceSettings settings(int chunkFloats, Duration firstRound) {
    return new AllReduceSettings(chunkFloats, firstRound, Duration.ofMillis(200), 20);
  }

  private static List<ActorRef<RingMessage>> ring(String job, long generation, int worldSize, AllReduceSettings settings) {
    List<ActorRef<RingMessage>> peers = new ArrayList<>();
    for (int rank = 0; rank < worldSize; rank++) {
      peers.add(testKit.spawn(AllReducePeer.create(job, generation, rank, worldSize, settings)));
    }
    peers.forEach(p -> p.tell(new AllReducePeer.Connect(peers)));
    return peers;
  }

  @ParameterizedTest(name = "{0} peers, {1} floats, chunks of {2}")
  @CsvSource({
    "1, 10, 4",
    "2, 109386, 65536",
    "2, 7, 3",
    "3, 1000, 7",
    "3, 2, 4",
    "4, 12345, 100",
    "5, 1001, 64",
    "5, 3, 1"
  })
  void everyRankEndsWithTheSumOfAllBuffers(int worldSize, int length, int chunkFloats) {
    List<ActorRef<RingMessage>> peers = ring("job-" + jobCounter++, 1, worldSize, settings(chunkFloats, GENEROUS));
    SplittableRandom random = new SplittableRandom(worldSize * 31L + length);
    for (long step = 0; step < 3; step++) {
      float[][] buffers = new float[worldSize][length];
      double[] expected = new double[length];
      for (int r = 0; r < worldSize; r++) {
        for (int i = 0; i < length; i++) {
          // Small integers keep float sums exact, so every summation order gives the same bits.
          buffers[r][i] = random.nextInt(-1000, 1000);
          expected[i] += buffers[r][i];
        }
      }
      List<TestProbe<StatusReply<AllReducePeer.Reduced>>> replies = new ArrayList<>();
      for (int r = 0; r < worldSize; r++) {
        TestProbe<StatusReply<AllReducePeer.Reduced>> probe = testKit.createTestProbe();
        replies.add(probe);
        peers.get(r).tell(new AllReducePeer.Reduce(step, buffers[r], probe.getRef()));
      }
      float[] first = null;
      for (TestProbe<StatusReply<AllReducePeer.Reduced>> probe : replies) {
        StatusReply<AllReducePeer.Reduced> reply = probe.receiveMessage(GENEROUS);
        assertTrue(reply.isSuccess(), () -> "reduce failed: " + reply.getError());
        float[] sum = reply.getValue().buffer();
        assertEquals(step, reply.getValue().step());
        for (int i = 0; i < length; i++) {
          assertEquals(expected[i], sum[i], 0.0, "element " + i);
        }
        if (first == null) {
          first = sum;
        } else {
          assertArrayEquals(first, sum);
        }
      }
    }
  }

  @Test
  void chunksOfAnotherGenerationAreDroppedAndCounted() {
    AllReduceSettings settings = settings(4, GENEROUS);
    List<ActorRef<RingMessage>> peers = ring("job-stale", 2, 2, settings);
    // A rank fenced out of generation 1 still sends its chunk of step 0: it must not be summed.
    peers.get(1).tell(new TensorChunk("job-stale", 1, 0, 0, 0, 0, new float[] {1e6f, 1e6f}));
    TestProbe<StatusReply<AllReducePeer.Reduced>> a = testKit.createTestProbe();
    TestProbe<StatusReply<AllReducePeer.Reduced>> b = testKit.createTestProbe();
    peers.get(0).tell(new AllReducePeer.Reduce(0, new float[] {1, 2, 3, 4}, a.getRef()));
    peers.get(1).tell(new AllReducePeer.Reduce(0, new float[] {10, 20, 30, 40}, b.getRef()));
    assertArrayEquals(new float[] {11, 22, 33, 44}, a.receiveMessage(GENEROUS).getValue().buffer());
    assertArrayEquals(new float[] {11, 22, 33, 44}, b.receiveMessage(GENEROUS).getValue().buffer());
    TestProbe<AllReducePeer.Stats> stats = testKit.createTestProbe();
    peers.get(1).tell(new AllReducePeer.GetStats(stats.getRef()));
    AllReducePeer.Stats s = stats.receiveMessage();
    assertEquals(1, s.staleDropped());
    assertEquals(1, s.rounds());
  }

  @Test
  void aMissingPeerFailsTheRoundAtItsDeadline() {
    List<ActorRef<RingMessage>> peers = ring("job-missing", 1, 3, settings(8, Duration.ofMillis(300)));
    TestProbe<StatusReply<AllReducePeer.Reduced>> a = testKit.createTestProbe();
    TestProbe<StatusReply<AllReducePeer.Reduced>> b = testKit.createTestProbe();
    // Rank 2 never joins this step.
    peers.get(0).tell(new AllReducePeer.Reduce(0, new float[100], a.getRef()));
    peers.get(1).tell(new AllReducePeer.Reduce(0, new float[100], b.getRef()));
    StatusReply<AllReducePeer.Reduced> reply = a.receiveMessage(GENEROUS);
    assertTrue(reply.isError());
    String message = reply.getError().getMessage();
    assertTrue(message.contains("missed its deadline of 300 ms"), message);
    assertTrue(message.contains("rank 2"), message);
    assertTrue(b.receiveMessage(GENEROUS).isError());
    // The ring stays broken: a later step fails at once instead of waiting again.
    peers.get(0).tell(new AllReducePeer.Reduce(1, new float[100], a.getRef()));
    assertTrue(a.receiveMessage(Duration.ofMillis(100)).isError());
  }

  @Test
  void aChunkThatFailedItsChecksumFailsTheRoundAtOnceNamingTheEdge() {
    List<ActorRef<RingMessage>> peers = ring("job-damaged", 1, 2, settings(4, GENEROUS));
    TestProbe<StatusReply<AllReducePeer.Reduced>> b = testKit.createTestProbe();
    peers.get(1).tell(new AllReducePeer.Reduce(0, new float[] {10, 20, 30, 40}, b.getRef()));
    // What the serializer makes of a chunk whose bytes changed on the wire.
    peers.get(1).tell(new TensorChunk("job-damaged", 1, 0, 0, 0, 0, new float[] {1, 2}, "its values do not match their checksum"));

    StatusReply<AllReducePeer.Reduced> reply = b.receiveMessage(GENEROUS);

    assertTrue(reply.isError());
    String message = reply.getError().getMessage();
    assertTrue(message.contains("from rank 0 to rank 1") && message.contains("checksum"), message);
    // Its values never reached the buffer, and the ring stays broken.
    peers.get(1).tell(new AllReducePeer.Reduce(1, new float[4], b.getRef()));
    assertTrue(b.receiveMessage(GENEROUS).isError());
  }

  @Test
  void refusesAStepThatWasAlreadyReduced() {
    List<ActorRef<RingMessage>> peers = ring("job-again", 1, 1, settings(8, GENEROUS));
    TestProbe<StatusReply<AllReducePeer.Reduced>> probe = testKit.createTestProbe();
    peers.get(0).tell(new AllReducePeer.Reduce(5, new float[] {1}, probe.getRef()));
    assertTrue(probe.receiveMessage().isSuccess());
    peers.get(0).tell(new AllReducePeer.Reduce(5, new float[] {1}, probe.getRef()));
    assertTrue(probe.receiveMessage().getError().getMessage().contains("already reduced"));
  }
}
