package kaon.actors.allreduce;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import kaon.actors.allreduce.RingEdge.Edge;
import kaon.actors.allreduce.AllReduceSettings.Transport;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Ring all-reduce between two actor systems in this JVM, each with its own Artery on loopback, as
 * two nodes would run it: over the tensor link, against Artery, and when the link fails.
 */
class TensorLinkTest {

  private static final ActorTestKit nodeA = ActorTestKit.create("link-a", nodeConfig());
  private static final ActorTestKit nodeB = ActorTestKit.create("link-b", nodeConfig());
  private static final Duration GENEROUS = Duration.ofSeconds(30);
  private static int jobCounter;

  /** Peers of the running test, stopped after it so that their links close. */
  private final List<Spawned> spawned = new ArrayList<>();

  private record Spawned(ActorTestKit node, ActorRef<RingMessage> peer) {}

  static Config nodeConfig() {
    return ConfigFactory.parseString("""
            pekko.actor.provider = remote
            pekko.remote.artery.canonical.hostname = "127.0.0.1"
            pekko.remote.artery.canonical.port = 0
            """)
        .withFallback(ConfigFactory.load("application-test"));
  }

  @AfterEach
  void stopPeers() {
    spawned.forEach(s -> s.node().stop(s.peer()));
  }

  @AfterAll
  static void shutdown() {
    nodeA.shutdownTestKit();
    nodeB.shutdownTestKit();
  }

  private static AllReduceSettings settings(int chunkFloats, Transport transport) {
    return new AllReduceSettings(chunkFloats, GENEROUS, Duration.ofMillis(500), 20, transport);
  }

  private ActorRef<RingMessage> peer(
      ActorTestKit node, String job, long generation, int rank, int worldSize, AllReduceSettings settings) {
    ActorRef<RingMessage> peer = node.spawn(AllReducePeer.create(job, generation, rank, worldSize, settings));
    spawned.add(new Spawned(node, peer));
    return peer;
  }

  /** A ring of {@code nodes.length} peers, rank r on {@code nodes[r]}, connected. */
  private List<ActorRef<RingMessage>> ring(String job, AllReduceSettings settings, ActorTestKit... nodes) {
    List<ActorRef<RingMessage>> peers = new ArrayList<>();
    for (int rank = 0; rank < nodes.length; rank++) {
      peers.add(peer(nodes[rank], job, 1, rank, nodes.length, settings));
    }
    connectAll(peers, nodes);
    return peers;
  }

  private static void connectAll(List<ActorRef<RingMessage>> ring, ActorTestKit... nodes) {
    for (int rank = 0; rank < nodes.length; rank++) {
      connect(rank, ring, nodes);
    }
  }

  /**
   * Connects the peer of {@code rank} (on {@code nodes[rank]}) to {@code ring} as a coordinator on
   * another node would: the refs arrive serialized, so the other node's peers are remote refs.
   * Handed over directly, they would be that system's local refs, which tell without Artery.
   */
  private static void connect(int rank, List<ActorRef<RingMessage>> ring, ActorTestKit... nodes) {
    ActorRefResolver resolver = ActorRefResolver.get(nodes[rank].system());
    List<ActorRef<RingMessage>> seen = new ArrayList<>();
    for (int r = 0; r < ring.size(); r++) {
      seen.add(resolver.resolveActorRef(
          ring.get(r).path().toSerializationFormatWithAddress(nodes[r].system().address())));
    }
    ring.get(rank).tell(new AllReducePeer.Connect(seen));
  }

  private static AllReducePeer.Stats stats(ActorTestKit node, ActorRef<RingMessage> peer) {
    try {
      return AskPattern.<RingMessage, AllReducePeer.Stats>ask(
              peer, AllReducePeer.GetStats::new, GENEROUS, node.system().scheduler())
          .toCompletableFuture().get(GENEROUS.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException | ExecutionException | TimeoutException e) {
      throw new AssertionError("no stats from " + peer, e);
    }
  }

  private static void awaitEdge(ActorTestKit node, ActorRef<RingMessage> peer, Edge edge) {
    node.createTestProbe().awaitAssert(GENEROUS, () -> {
      assertEquals(edge, stats(node, peer).edge());
      return null;
    });
  }

  /** Reduces {@code buffers} (one per rank, copied) for {@code step} and returns the results. */
  private static float[][] reduce(List<ActorRef<RingMessage>> peers, ActorTestKit node, long step, float[][] buffers) {
    List<TestProbe<StatusReply<AllReducePeer.Reduced>>> replies = new ArrayList<>();
    for (int r = 0; r < peers.size(); r++) {
      TestProbe<StatusReply<AllReducePeer.Reduced>> probe = node.createTestProbe();
      replies.add(probe);
      peers.get(r).tell(new AllReducePeer.Reduce(step, buffers[r].clone(), probe.getRef()));
    }
    float[][] sums = new float[peers.size()][];
    for (int r = 0; r < peers.size(); r++) {
      StatusReply<AllReducePeer.Reduced> reply = replies.get(r).receiveMessage(GENEROUS);
      assertTrue(reply.isSuccess(), () -> "reduce failed: " + reply.getError());
      sums[r] = reply.getValue().buffer();
    }
    return sums;
  }

  private static float[][] randomBuffers(SplittableRandom random, int worldSize, int length) {
    float[][] buffers = new float[worldSize][length];
    for (float[] buffer : buffers) {
      for (int i = 0; i < length; i++) {
        // Not small integers: the sums round, so the same bits mean the same summation order.
        buffer[i] = (float) (random.nextGaussian() * 1e3);
      }
    }
    return buffers;
  }

  @ParameterizedTest(name = "{0} ranks, {1} floats, chunks of {2}")
  @CsvSource({"2, 1001, 64", "2, 109386, 16384", "3, 10007, 100"})
  void aRingOverTheLinkGivesTheSameBitsAsArtery(int worldSize, int length, int chunkFloats) {
    // Ranks 0..W-2 on node A and the last on node B: with 3 ranks one edge stays inside A.
    ActorTestKit[] nodes = new ActorTestKit[worldSize];
    for (int r = 0; r < worldSize; r++) {
      nodes[r] = r == worldSize - 1 ? nodeB : nodeA;
    }
    List<ActorRef<RingMessage>> overArtery = ring("job-" + jobCounter++, settings(chunkFloats, Transport.ARTERY), nodes);
    List<ActorRef<RingMessage>> overLink = ring("job-" + jobCounter++, settings(chunkFloats, Transport.LINK), nodes);
    for (int r = 0; r < worldSize; r++) {
      boolean remote = nodes[r] != nodes[(r + 1) % worldSize];
      awaitEdge(nodes[r], overArtery.get(r), remote ? Edge.ARTERY : Edge.IN_JVM);
      awaitEdge(nodes[r], overLink.get(r), remote ? Edge.LINK : Edge.IN_JVM);
    }
    SplittableRandom random = new SplittableRandom(length);
    for (long step = 0; step < 3; step++) {
      float[][] buffers = randomBuffers(random, worldSize, length);
      float[][] artery = reduce(overArtery, nodeA, step, buffers);
      float[][] link = reduce(overLink, nodeA, step, buffers);
      for (int r = 0; r < worldSize; r++) {
        assertArrayEquals(artery[0], artery[r], "Artery: rank " + r + " differs from rank 0");
        assertArrayEquals(artery[r], link[r], "rank " + r + ": the link's bits differ from Artery's");
      }
    }
    for (int r = 0; r < worldSize; r++) {
      boolean remote = nodes[r] != nodes[(r + 1) % worldSize];
      AllReducePeer.Stats s = stats(nodes[r], overLink.get(r));
      assertEquals(remote ? s.chunksSent() : 0, s.linkChunksSent(), "rank " + r + " over the link: " + s);
      assertTrue(s.chunksSent() > 0);
      assertEquals(0, stats(nodes[r], overArtery.get(r)).linkChunksSent());
    }
  }

  @Test
  void aNeighbourInTheSameJvmNeverUsesTheLink() {
    TensorLink.Stats before = TensorLink.get(nodeA.system()).stats();
    List<ActorRef<RingMessage>> peers = ring("job-local", settings(4, Transport.LINK), nodeA, nodeA);
    float[][] sums = reduce(peers, nodeA, 0, new float[][] {{1, 2, 3}, {10, 20, 30}});
    assertArrayEquals(new float[] {11, 22, 33}, sums[0]);
    assertArrayEquals(new float[] {11, 22, 33}, sums[1]);
    for (ActorRef<RingMessage> peer : peers) {
      AllReducePeer.Stats s = stats(nodeA, peer);
      assertEquals(Edge.IN_JVM, s.edge());
      assertEquals(0, s.linkChunksSent());
    }
    assertEquals(before, TensorLink.get(nodeA.system()).stats(), "no connection opened, no frame read");
  }

  @Test
  void chunksOfAStaleGenerationOverTheLinkAreDroppedAndCounted() {
    AllReduceSettings settings = settings(4, Transport.LINK);
    ActorRef<RingMessage> current0 = peer(nodeA, "job-fenced", 2, 0, 2, settings);
    ActorRef<RingMessage> current1 = peer(nodeB, "job-fenced", 2, 1, 2, settings);
    List<ActorRef<RingMessage>> current = List.of(current0, current1);
    connectAll(current, nodeA, nodeB);
    // A rank fenced out of generation 1 whose ring names a peer of generation 2 opens a link to
    // it; the handshake says generation 1, and so does every chunk it delivers.
    ActorRef<RingMessage> stale = peer(nodeA, "job-fenced", 1, 0, 2, settings);
    connect(0, List.of(stale, current1), nodeA, nodeB);
    awaitEdge(nodeA, stale, Edge.LINK);
    long framesBefore = TensorLink.get(nodeB.system()).stats().framesReceived();
    TestProbe<StatusReply<AllReducePeer.Reduced>> ignored = nodeA.createTestProbe();
    stale.tell(new AllReducePeer.Reduce(0, new float[] {1e6f, 1e6f, 1e6f, 1e6f, 1e6f, 1e6f, 1e6f, 1e6f}, ignored.getRef()));
    nodeB.createTestProbe().awaitAssert(GENEROUS, () -> {
      assertEquals(1, stats(nodeB, current1).staleDropped());
      return null;
    });
    assertEquals(framesBefore + 1, TensorLink.get(nodeB.system()).stats().framesReceived(), "it came over the link");
    float[][] sums = reduce(current, nodeA, 0, new float[][] {{1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1}});
    assertArrayEquals(new float[] {9, 9, 9, 9, 9, 9, 9, 9}, sums[0]);
    assertArrayEquals(new float[] {9, 9, 9, 9, 9, 9, 9, 9}, sums[1]);
    assertEquals(1, stats(nodeB, current1).staleDropped());
  }

  @Test
  void aNeighbourWithoutALinkGetsItsChunksOverArtery() {
    ActorRef<RingMessage> rank0 = peer(nodeA, "job-mixed", 1, 0, 2, settings(8, Transport.LINK));
    ActorRef<RingMessage> rank1 = peer(nodeB, "job-mixed", 1, 1, 2, settings(8, Transport.ARTERY));
    List<ActorRef<RingMessage>> ring = List.of(rank0, rank1);
    connectAll(ring, nodeA, nodeB);
    awaitEdge(nodeA, rank0, Edge.ARTERY);
    float[][] sums = reduce(ring, nodeA, 0, new float[][] {{1, 2, 3}, {4, 5, 6}});
    assertArrayEquals(new float[] {5, 7, 9}, sums[0]);
    assertArrayEquals(new float[] {5, 7, 9}, sums[1]);
  }

  @Test
  void aConnectionThatGuessesAPeerIdIsRefused() throws IOException {
    // Peers are registered (their left neighbours asked for endpoints), so ids are in use.
    List<ActorRef<RingMessage>> peers = ring("job-guessed", settings(8, Transport.LINK), nodeA, nodeB);
    awaitEdge(nodeA, peers.get(0), Edge.LINK);
    TensorLink linkB = TensorLink.get(nodeB.system());
    long refusedBefore = linkB.stats().handshakesRefused();
    // Small ids (what a counter hands out) and a few random ones: none admits a connection.
    List<Long> guesses = List.of(1L, 2L, 3L, 4L, new SplittableRandom(7).nextLong() & Long.MAX_VALUE);
    for (long guess : guesses) {
      try (SocketChannel channel = SocketChannel.open(new InetSocketAddress(linkB.host(), linkB.port()))) {
        TensorLinkFormat.writeHandshake(new TensorLinkFormat.Handshake(guess, "job-guessed", 1), channel);
        assertEquals(TensorLinkFormat.UNKNOWN_TARGET, TensorLinkFormat.readReply(channel), "id " + guess);
      }
    }
    assertEquals(refusedBefore + guesses.size(), linkB.stats().handshakesRefused());
    float[][] sums = reduce(peers, nodeA, 0, new float[][] {{1, 2}, {3, 4}});
    assertArrayEquals(new float[] {4, 6}, sums[1]);
  }

  @Test
  void aConnectionThatNamesAPeerButNotItsKeyIsRefused() throws IOException {
    TensorLink linkB = TensorLink.get(nodeB.system());
    TestProbe<RingMessage> peer = nodeB.createTestProbe();
    TensorLink.Registration registration = linkB.register(peer.getRef());
    try {
      TensorLinkFormat.Handshake handshake = new TensorLinkFormat.Handshake(registration.id(), "job-keyed", 1);
      long refusedBefore = linkB.stats().handshakesRefused();
      byte[] wrongKey = registration.key().clone();
      wrongKey[0] ^= 1;
      // The right id with a key one bit off, and a proof replayed from another connection's
      // challenge: both are refused, and neither reaches the peer.
      byte[] replayed;
      try (SocketChannel channel = SocketChannel.open(new InetSocketAddress(linkB.host(), linkB.port()))) {
        TensorLinkFormat.writeHandshake(handshake, channel);
        assertEquals(TensorLinkFormat.CHALLENGE, TensorLinkFormat.readReply(channel));
        byte[] nonce = TensorLinkFormat.readSecretSized(channel);
        replayed = TensorLinkFormat.proof(registration.key(), nonce, handshake);
        TensorLinkFormat.writeProof(TensorLinkFormat.proof(wrongKey, nonce, handshake), channel);
        assertEquals(TensorLinkFormat.UNAUTHENTICATED, TensorLinkFormat.readReply(channel));
      }
      try (SocketChannel channel = SocketChannel.open(new InetSocketAddress(linkB.host(), linkB.port()))) {
        TensorLinkFormat.writeHandshake(handshake, channel);
        assertEquals(TensorLinkFormat.CHALLENGE, TensorLinkFormat.readReply(channel));
        TensorLinkFormat.readSecretSized(channel);
        TensorLinkFormat.writeProof(replayed, channel);
        assertEquals(TensorLinkFormat.UNAUTHENTICATED, TensorLinkFormat.readReply(channel));
      }
      assertEquals(refusedBefore + 2, linkB.stats().handshakesRefused());
      // The key itself admits the connection, and its chunks reach the peer.
      try (SocketChannel channel = SocketChannel.open(new InetSocketAddress(linkB.host(), linkB.port()))) {
        TensorLinkFormat.writeHandshake(handshake, channel);
        assertEquals(TensorLinkFormat.CHALLENGE, TensorLinkFormat.readReply(channel));
        byte[] nonce = TensorLinkFormat.readSecretSized(channel);
        TensorLinkFormat.writeProof(TensorLinkFormat.proof(registration.key(), nonce, handshake), channel);
        assertEquals(TensorLinkFormat.ACCEPTED, TensorLinkFormat.readReply(channel));
        TensorLinkFormat.FrameWriter writer = new TensorLinkFormat.FrameWriter(channel, handshake, 4096);
        writer.write(new TensorChunk("job-keyed", 1, 0, 0, 0, 0, new float[] {1, 2}));
        writer.flush();
        assertEquals(new TensorChunk("job-keyed", 1, 0, 0, 0, 0, new float[] {1, 2}), peer.receiveMessage(GENEROUS));
      }
      assertEquals(refusedBefore + 2, linkB.stats().handshakesRefused());
    } finally {
      linkB.unregister(registration.id());
    }
  }

  @Test
  @org.junit.jupiter.api.Timeout(60)
  void aConnectionThatNeverCompletesItsHandshakeIsClosedAfterTheSetupTimeout() throws IOException {
    TensorLink linkB = TensorLink.get(nodeB.system());
    long refusedBefore = linkB.stats().handshakesRefused();
    try (SocketChannel channel = SocketChannel.open(new InetSocketAddress(linkB.host(), linkB.port()))) {
      // Says nothing: the link closes it once setup-timeout has passed, and the read sees the end.
      assertEquals(-1, channel.read(java.nio.ByteBuffer.allocate(1)));
    }
    assertEquals(refusedBefore + 1, linkB.stats().handshakesRefused());
  }

  @Test
  void stoppedPeersCloseTheirConnectionsAndThreads() {
    // Connections of earlier tests close asynchronously once their peers stop; start from the
    // quiet state (one accept thread per node), or a thread ending late skews the count.
    Set<String> threadsBefore = Set.of("kaon-link-link-a-accept", "kaon-link-link-b-accept");
    nodeA.createTestProbe().awaitAssert(GENEROUS, () -> {
      assertEquals(threadsBefore, linkThreadsOf("link-a", "link-b"));
      return null;
    });
    TensorLink.Stats a = TensorLink.get(nodeA.system()).stats();
    TensorLink.Stats b = TensorLink.get(nodeB.system()).stats();
    List<ActorRef<RingMessage>> peers = ring("job-stop", settings(8, Transport.LINK), nodeA, nodeB);
    awaitEdge(nodeA, peers.get(0), Edge.LINK);
    awaitEdge(nodeB, peers.get(1), Edge.LINK);
    reduce(peers, nodeA, 0, new float[][] {new float[100], new float[100]});
    Set<String> during = linkThreadsOf("link-a", "link-b");
    assertEquals(threadsBefore.size() + 4, during.size(), "a reader and a writer per edge: " + during);
    stopPeers();
    spawned.clear();
    nodeA.createTestProbe().awaitAssert(GENEROUS, () -> {
      assertEquals(threadsBefore, linkThreadsOf("link-a", "link-b"));
      assertEquals(a.inbound(), TensorLink.get(nodeA.system()).stats().inbound());
      assertEquals(a.outbound(), TensorLink.get(nodeA.system()).stats().outbound());
      assertEquals(b.inbound(), TensorLink.get(nodeB.system()).stats().inbound());
      assertEquals(b.outbound(), TensorLink.get(nodeB.system()).stats().outbound());
      return null;
    });
  }

  @Test
  void aLinkClosedMidRoundFailsTheRoundAtItsDeadlineAndLeavesNothingBehind() throws IOException {
    ActorTestKit nodeC = ActorTestKit.create("link-c", nodeConfig());
    try {
      AllReduceSettings settings = new AllReduceSettings(8, Duration.ofSeconds(2), Duration.ofMillis(500), 20, Transport.LINK);
      ActorRef<RingMessage> rank0 = peer(nodeA, "job-cut", 1, 0, 2, settings);
      ActorRef<RingMessage> rank1 = nodeC.spawn(AllReducePeer.create("job-cut", 1, 1, 2, settings));
      List<ActorRef<RingMessage>> ring = List.of(rank0, rank1);
      connectAll(ring, nodeA, nodeC);
      awaitEdge(nodeA, rank0, Edge.LINK);
      awaitEdge(nodeC, rank1, Edge.LINK);
      TensorLink linkC = TensorLink.get(nodeC.system());
      // Rank 0 starts the round: its half (4 chunks of 8 floats) crosses to node C...
      TestProbe<StatusReply<AllReducePeer.Reduced>> reply0 = nodeA.createTestProbe();
      rank0.tell(new AllReducePeer.Reduce(0, new float[64], reply0.getRef()));
      nodeC.createTestProbe().awaitAssert(GENEROUS, () -> {
        assertEquals(4, linkC.stats().framesReceived());
        return null;
      });
      // ...and then node C's link goes away, both of its connections with it.
      linkC.close();
      assertEquals(Set.of(), linkThreads().stream().filter(t -> t.startsWith("kaon-link-link-c-")).collect(Collectors.toSet()));
      assertEquals(new TensorLink.Stats(0, 0, 4, 0, 0), linkC.stats());
      assertThrows(ConnectException.class, () -> new Socket(linkC.host(), linkC.port()).close());
      awaitEdge(nodeC, rank1, Edge.ARTERY);
      // Rank 1 joins the round; its half goes over Artery now, but rank 0's answer went into the
      // closed connection: rank 1 must fail at its deadline, not hang.
      TestProbe<StatusReply<AllReducePeer.Reduced>> reply1 = nodeC.createTestProbe();
      rank1.tell(new AllReducePeer.Reduce(0, new float[64], reply1.getRef()));
      StatusReply<AllReducePeer.Reduced> failed = reply1.receiveMessage(GENEROUS);
      assertTrue(failed.isError(), "the round should have failed");
      assertTrue(failed.getError().getMessage().contains("missed its deadline of 2000 ms"), failed.getError().getMessage());
    } finally {
      nodeC.shutdownTestKit();
    }
  }

  @Test
  void aNeighbourThatStopsReadingCannotHoldTheReplyForever() throws Exception {
    // Node B's side is played by the test: a probe answers the endpoint request with a socket that
    // accepts the handshake and then never reads, as a hung JVM would.
    try (ServerSocketChannel hung = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
      TestProbe<RingMessage> right = nodeB.createTestProbe();
      // Chunks that fit Artery's ordinary frames, which carry them to the probe after the link closes.
      int chunk = 32 * 1024;
      AllReduceSettings settings = new AllReduceSettings(chunk, GENEROUS, Duration.ofMillis(500), 20, Transport.LINK);
      ActorRef<RingMessage> rank0 = peer(nodeA, "job-hung", 1, 0, 2, settings);
      connect(0, List.of(rank0, right.getRef()), nodeA, nodeB);
      RingEdge.LinkEndpointRequest request = right.expectMessageClass(RingEdge.LinkEndpointRequest.class, GENEROUS);
      byte[] key = new byte[TensorLinkFormat.SECRET_BYTES];
      request.replyTo().tell(new RingEdge.LinkEndpoint("127.0.0.1", hung.socket().getLocalPort(), 1, key, null));
      SocketChannel accepted = hung.accept();
      TensorLinkFormat.Handshake handshake = TensorLinkFormat.readHandshake(accepted);
      byte[] nonce = new byte[TensorLinkFormat.SECRET_BYTES];
      TensorLinkFormat.writeChallenge(nonce, accepted);
      assertTrue(TensorLinkFormat.verify(key, nonce, handshake, TensorLinkFormat.readSecretSized(accepted)));
      TensorLinkFormat.writeReply(TensorLinkFormat.ACCEPTED, accepted);
      awaitEdge(nodeA, rank0, Edge.LINK);
      // 16 MiB: rank 0's half (8 MiB) is more than the socket buffers take, so its writer blocks
      // (the listener's receive buffer stays small while nothing reads it).
      int length = 4 * 1024 * 1024;
      TestProbe<StatusReply<AllReducePeer.Reduced>> reply = nodeA.createTestProbe();
      rank0.tell(new AllReducePeer.Reduce(0, new float[length], reply.getRef()));
      // Rank 1's part of the round (how it arrives does not matter here): its half of round 0,
      // all ones, then rank 0's half summed, 0 + 1.
      int half = length / 2;
      for (int c = 0; c < half / chunk; c++) {
        float[] ones = new float[chunk];
        Arrays.fill(ones, 1);
        rank0.tell(new TensorChunk("job-hung", 1, 0, 0, c, half + c * chunk, ones));
        rank0.tell(new TensorChunk("job-hung", 1, 0, 1, c, c * chunk, ones.clone()));
      }
      // The sums are complete, but the writer still holds frames of the buffer: the reply waits
      // for it, at most min-round-timeout, then the link is closed and the reply goes out.
      StatusReply<AllReducePeer.Reduced> done = reply.receiveMessage(GENEROUS);
      assertTrue(done.isSuccess(), () -> "reduce failed: " + done.getError());
      float[] sum = done.getValue().buffer();
      for (int i = 0; i < length; i++) {
        assertEquals(1f, sum[i], "element " + i);
      }
      awaitEdge(nodeA, rank0, Edge.ARTERY);
      accepted.close();
    }
  }

  private static Set<String> linkThreadsOf(String... nodes) {
    return linkThreads().stream()
        .filter(name -> Arrays.stream(nodes).anyMatch(node -> name.startsWith("kaon-link-" + node + "-")))
        .collect(Collectors.toSet());
  }

  private static Set<String> linkThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(Thread::isAlive)
        .map(Thread::getName)
        .filter(name -> name.startsWith("kaon-link-"))
        .collect(Collectors.toSet());
  }
}
