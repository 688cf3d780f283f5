package kaon.actors.allreduce;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Ranks of one JVM summing in shared memory get the ring's bits exactly, whatever the values, and
 * a rank that does not come, or a generation that is stopped, ends the waiting ranks with a reason.
 */
class SharedReductionTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Duration GENEROUS = Duration.ofSeconds(30);
  private static final ExecutorService threads = Executors.newCachedThreadPool();

  @AfterAll
  static void shutdown() {
    threads.shutdownNow();
    testKit.shutdownTestKit();
  }

  private static AllReduceSettings settings(Duration firstRound, Duration floor) {
    return new AllReduceSettings(64, firstRound, floor, 20);
  }

  @ParameterizedTest(name = "{0} ranks, {1} floats")
  @CsvSource({"2, 1000", "3, 1001", "4, 12345", "5, 7", "3, 2"})
  void theBitsAreTheRingsWhateverTheValues(int worldSize, int length) throws Exception {
    SplittableRandom random = new SplittableRandom(worldSize * 131L + length);
    SharedReduction shared = new SharedReduction("job-bits", 1, worldSize, settings(GENEROUS, GENEROUS));
    List<ActorRef<RingMessage>> ring = ring("job-bits-" + worldSize + "-" + length, worldSize, 64);
    for (long step = 0; step < 3; step++) {
      // Values of every magnitude: float sums then depend on their order, as gradients' do.
      float[][] values = new float[worldSize][length];
      for (float[] v : values) {
        for (int i = 0; i < length; i++) {
          v[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(-6, 6)));
        }
      }
      float[][] byRing = ringSums(ring, step, values);
      float[][] byMemory = sharedSums(shared, step, values);
      for (int r = 0; r < worldSize; r++) {
        assertArrayEquals(byRing[0], byRing[r], "the ring's ranks disagree");
        assertBitsEqual(byRing[r], byMemory[r]);
      }
      // A different order would differ somewhere in these values: the comparison can fail.
      if (worldSize > 2 && length > 100) {
        assertTrue(differsFromLeftToRightOrder(values, byMemory[0]), "the test values do not depend on the order");
      }
    }
  }

  @Test
  void aRankThatDoesNotComeFailsTheOthersNamingIt() throws Exception {
    SharedReduction shared = new SharedReduction("job-missing", 4, 3, settings(Duration.ofMillis(300), Duration.ofMillis(300)));
    Future<AllReducePeer.Reduced> a = threads.submit(() -> shared.reduce(0, 7, new float[] {1}));
    Future<AllReducePeer.Reduced> b = threads.submit(() -> shared.reduce(1, 7, new float[] {2}));
    ExecutionException ea = assertThrows(ExecutionException.class, () -> a.get(10, TimeUnit.SECONDS));
    ExecutionException eb = assertThrows(ExecutionException.class, () -> b.get(10, TimeUnit.SECONDS));
    assertTrue(ea.getCause() instanceof SharedReduction.BrokenException, ea.getCause().toString());
    assertTrue(ea.getCause().getMessage().contains("missed its deadline of 300 ms waiting for rank 2"),
        ea.getCause().getMessage());
    assertEquals(ea.getCause().getMessage(), eb.getCause().getMessage());
    // Broken for good: the rank that comes late fails at once, with the same reason.
    SharedReduction.BrokenException late = assertThrows(SharedReduction.BrokenException.class,
        () -> shared.reduce(2, 7, new float[] {3}));
    assertEquals(ea.getCause().getMessage(), late.getMessage());
  }

  @Test
  void anAbortEndsTheWaitingRanksAtOnce() throws Exception {
    SharedReduction shared = new SharedReduction("job-abort", 2, 2, settings(GENEROUS, GENEROUS));
    Future<AllReducePeer.Reduced> waiting = threads.submit(() -> shared.reduce(0, 0, new float[] {1}));
    // The rank is waiting (it cannot complete alone) when the generation is stopped.
    assertThrows(java.util.concurrent.TimeoutException.class, () -> waiting.get(200, TimeUnit.MILLISECONDS));
    shared.abort("generation 2 stopped: rank 1 failed");
    ExecutionException e = assertThrows(ExecutionException.class, () -> waiting.get(10, TimeUnit.SECONDS));
    assertEquals("generation 2 stopped: rank 1 failed", e.getCause().getMessage());
    assertTrue(shared.broken());
  }

  @Test
  void ranksAtDifferentStepsFailBothSayingSo() throws Exception {
    SharedReduction shared = new SharedReduction("job-steps", 1, 2, settings(GENEROUS, GENEROUS));
    Future<AllReducePeer.Reduced> a = threads.submit(() -> shared.reduce(0, 5, new float[] {1}));
    Future<AllReducePeer.Reduced> b = threads.submit(() -> shared.reduce(1, 6, new float[] {1}));
    for (Future<AllReducePeer.Reduced> f : List.of(a, b)) {
      ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("disagree: rank 0 reduces step 5 (1 floats), rank 1 step 6"),
          e.getCause().getMessage());
    }
  }

  @Test
  void buffersOfAnotherLengthAreSummedToo() throws Exception {
    // The state transfer before a generation's first step reduces a buffer of another length.
    SharedReduction shared = new SharedReduction("job-lengths", 1, 2, settings(GENEROUS, GENEROUS));
    float[][] small = sharedSums(shared, -1, new float[][] {{1, 2}, {3, 4}});
    assertArrayEquals(new float[] {4, 6}, small[1]);
    float[][] large = sharedSums(shared, 0, new float[][] {{1, 2, 3, 4, 5}, {10, 20, 30, 40, 50}});
    assertArrayEquals(new float[] {11, 22, 33, 44, 55}, large[0]);
    float[][] again = sharedSums(shared, 1, new float[][] {{1}, {2}});
    assertArrayEquals(new float[] {3}, again[0]);
  }

  @Test
  void theRegistryHandsEveryRankOfAGenerationTheSameReductionUntilTheLastLeaves() {
    LocalReductions reductions = LocalReductions.get(testKit.system());
    AllReduceSettings s = settings(GENEROUS, GENEROUS);
    SharedReduction a = reductions.acquire("job-registry", 3, 2, s);
    SharedReduction b = reductions.acquire("job-registry", 3, 2, s);
    assertTrue(a == b);
    assertTrue(a != reductions.acquire("job-registry", 4, 2, s));
    reductions.release("job-registry", 4);
    reductions.release("job-registry", 3);
    assertTrue(a == reductions.acquire("job-registry", 3, 2, s));
    reductions.release("job-registry", 3);
    reductions.release("job-registry", 3);
    assertTrue(a != reductions.acquire("job-registry", 3, 2, s), "kept after its last rank left");
    reductions.release("job-registry", 3);
    assertEquals(0, reductions.size());
  }

  private static void assertBitsEqual(float[] expected, float[] actual) {
    for (int i = 0; i < expected.length; i++) {
      int at = i;
      assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]),
          () -> "element " + at + ": ring " + expected[at] + ", shared memory " + actual[at]);
    }
  }

  private static boolean differsFromLeftToRightOrder(float[][] values, float[] sum) {
    for (int i = 0; i < sum.length; i++) {
      float plain = 0;
      for (float[] v : values) {
        plain += v[i];
      }
      if (Float.floatToRawIntBits(plain) != Float.floatToRawIntBits(sum[i])) {
        return true;
      }
    }
    return false;
  }

  private static List<ActorRef<RingMessage>> ring(String job, int worldSize, int chunkFloats) {
    List<ActorRef<RingMessage>> peers = new ArrayList<>();
    for (int rank = 0; rank < worldSize; rank++) {
      peers.add(testKit.spawn(AllReducePeer.create(job, 1, rank, worldSize, settings(GENEROUS, GENEROUS))));
    }
    peers.forEach(p -> p.tell(new AllReducePeer.Connect(peers)));
    return peers;
  }

  private static float[][] ringSums(List<ActorRef<RingMessage>> ring, long step, float[][] values) {
    List<TestProbe<StatusReply<AllReducePeer.Reduced>>> replies = new ArrayList<>();
    for (int r = 0; r < ring.size(); r++) {
      TestProbe<StatusReply<AllReducePeer.Reduced>> probe = testKit.createTestProbe();
      replies.add(probe);
      ring.get(r).tell(new AllReducePeer.Reduce(step, values[r].clone(), probe.getRef()));
    }
    float[][] sums = new float[ring.size()][];
    for (int r = 0; r < ring.size(); r++) {
      StatusReply<AllReducePeer.Reduced> reply = replies.get(r).receiveMessage(GENEROUS);
      assertTrue(reply.isSuccess(), () -> "ring reduce failed: " + reply.getError());
      sums[r] = reply.getValue().buffer();
    }
    return sums;
  }

  private static float[][] sharedSums(SharedReduction shared, long step, float[][] values) throws Exception {
    List<CompletableFuture<float[]>> futures = new ArrayList<>();
    for (int r = 0; r < values.length; r++) {
      int rank = r;
      float[] own = values[r].clone();
      futures.add(CompletableFuture.supplyAsync(() -> {
        try {
          AllReducePeer.Reduced reduced = shared.reduce(rank, step, own);
          assertTrue(reduced.buffer() == own, "not summed in place");
          return reduced.buffer();
        } catch (InterruptedException e) {
          throw new IllegalStateException(e);
        }
      }, threads));
    }
    float[][] sums = new float[values.length][];
    for (int r = 0; r < values.length; r++) {
      sums[r] = futures.get(r).get(30, TimeUnit.SECONDS);
    }
    return sums;
  }
}
