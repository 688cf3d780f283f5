package kaon.actors.allreduce;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import kaon.protocol.InboundChunk;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.LentBuffer;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorChunkView;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.pattern.StatusReply;

/**
 * One rank's end of a chunked ring all-reduce, for one generation of one job.
 *
 * <p>A {@link Reduce} hands over the rank's flat buffer; every rank's buffer is summed in place
 * and the same bits end up on every rank. The buffer is cut into {@code W} segments and each
 * segment into chunks of at most {@code chunkFloats}. Reduce-scatter: in round {@code r} a rank
 * sends segment {@code rank - r} to its right neighbour and adds segment {@code rank - r - 1} from
 * its left one; after {@code W-1} rounds each rank holds one fully summed segment. All-gather:
 * {@code W-1} more rounds pass the summed segments on, copied instead of added. A chunk is
 * forwarded as soon as it arrives, so chunks of one segment pipeline through the ring. Each rank
 * sends and receives {@code 2(W-1)/W} of the buffer.
 *
 * <p>Every chunk carries {@code (jobId, generation, step, round, chunk)}. Chunks of another
 * generation are dropped and counted (the generation is the fencing token: a rank of a former
 * membership must not corrupt the sums of the current one). Chunks for a step this rank has not
 * started yet are held until it does: a neighbour may finish a step and start the next one first.
 *
 * <p>Every round has a deadline; a missed one fails the {@link Reduce} with the missing rank
 * named, and every later one too, since a ring with a missing member cannot complete. Nothing
 * survives a crash: a new generation gets new peers.
 *
 * <p>Inside one JVM the chunks are plain object references, never serialized. Across JVMs they
 * go over Artery with their own ByteBuffer serializer, or, with {@code kaon.allreduce.transport =
 * link}, over a {@link TensorLink}: on {@link Connect} the peer asks its right neighbour for its
 * link endpoint ({@link LinkEndpointRequest}) and opens a connection to it; until that is up, or
 * if it cannot be, chunks keep going over Artery, so none is lost on the way. The right
 * neighbour's link hands the chunks to it with a local {@code tell}: fencing, early chunks and
 * deadlines do not depend on the transport. A broken link is noticed like a dead peer, by the
 * round deadline. On stop the peer closes its link and leaves its node's link registry, which
 * closes the connection its left neighbour opened.
 *
 * <p>Across JVMs nothing is copied for sending: the link's writer, or Artery's serializer (a
 * {@link TensorChunkView} of a {@link LentBuffer}), reads each chunk out of the buffer itself.
 * That is safe during a round, since the ring rewrites a region only after the right neighbour
 * has had it, but not after it, so a round's reply waits until every chunk was written (at most
 * {@code min-round-timeout}; then the link is closed, or the buffer withdrawn from Artery). Arrays
 * of chunks received over the link go back to the link's readers once added in; chunks received
 * over Artery are read in place ({@link kaon.protocol.FramedTensorChunk}).
 */
public final class AllReducePeer extends AbstractBehavior<RingMessage> {

  /** Local commands. {@link TensorChunk}s from the left neighbour are the other input. */
  public sealed interface Command extends RingMessage
      permits Connect, Reduce, Abort, GetStats, LinkEndpointRequest, RoundTimedOut, EndpointAnswer, LinkChanged,
          LentWritten, DrainTimedOut {}

  /** The ring in rank order (including this peer). Must come before the first {@link Reduce}. */
  public record Connect(List<ActorRef<RingMessage>> ring) implements Command {}

  /**
   * Sums {@code buffer} with every other rank's buffer of the same step, in place. The caller
   * must not touch {@code buffer} until the reply.
   */
  public record Reduce(long step, float[] buffer, ActorRef<StatusReply<Reduced>> replyTo)
      implements Command {}

  /**
   * The generation is over for this rank: the round in flight (and every later one) fails now
   * with {@code reason} instead of at its deadline, so that the rank's thread is free at once.
   */
  public record Abort(String reason) implements Command {}

  /** The summed buffer of {@code step} and how long the round took. */
  public record Reduced(long step, float[] buffer, long nanos) {}

  /** Asks for the counters. */
  public record GetStats(ActorRef<Stats> replyTo) implements Command {}

  /**
   * Asks this peer where its node's tensor link listens for it. Sent by the left neighbour, from
   * another node; the answer registers this peer with its link.
   */
  public record LinkEndpointRequest(ActorRef<LinkEndpoint> replyTo) implements Command, KryoWireMessage {}

  /**
   * Where to open a tensor link to a peer, or why chunks must stay on Artery.
   *
   * @param host the link's listening host
   * @param port the link's listening port
   * @param target the peer's id in that link, named in the handshake
   * @param key what the connection proves it holds ({@link TensorLinkFormat}); secret, so it
   *     travels only in this message, over Artery (mutual TLS on VMs), and is never logged
   * @param unavailable null if the other fields are valid, else why there is no link
   */
  public record LinkEndpoint(String host, int port, long target, byte[] key, String unavailable)
      implements KryoWireMessage {

    /** Compares the key by content, which a record would compare by reference. */
    @Override
    public boolean equals(Object other) {
      return other instanceof LinkEndpoint that
          && port == that.port
          && target == that.target
          && Objects.equals(host, that.host)
          && Arrays.equals(key, that.key)
          && Objects.equals(unavailable, that.unavailable);
    }

    @Override
    public int hashCode() {
      return 31 * Objects.hash(host, port, target, unavailable) + Arrays.hashCode(key);
    }

    /** Leaves the key out: messages end up in logs and dead-letter reports. */
    @Override
    public String toString() {
      return "LinkEndpoint[host=" + host + ", port=" + port + ", target=" + Long.toHexString(target)
          + (unavailable == null ? "" : ", unavailable=" + unavailable) + "]";
    }
  }

  /** How chunks reach the right neighbour. */
  public enum Edge {
    /** No {@link Connect} yet. */
    UNCONNECTED,
    /** Same JVM: plain references, no serialization. */
    IN_JVM,
    /** Artery, by configuration or because no link could be set up. */
    ARTERY,
    /** Artery while a tensor link is being set up. */
    CONNECTING,
    /** The tensor link. */
    LINK
  }

  /**
   * Counters of this peer, and how its chunks travel.
   *
   * @param rounds completed reductions
   * @param staleDropped chunks dropped because they belong to another generation or job
   * @param chunksSent chunk messages sent to the right neighbour
   * @param floatsSent floats in those chunks
   * @param linkChunksSent those of the chunks that went over the tensor link
   * @param edge how chunks reach the right neighbour now
   */
  public record Stats(long rounds, long staleDropped, long chunksSent, long floatsSent, long linkChunksSent, Edge edge) {}

  private record RoundTimedOut(long step) implements Command {}

  private record EndpointAnswer(LinkEndpoint endpoint, String failure) implements Command {}

  private record LinkChanged(LinkSender.Event event) implements Command {}

  /** Artery wrote the last region lent for the round of {@code step}. */
  private record LentWritten(long step) implements Command {}

  private record DrainTimedOut(long step) implements Command {}

  /** State of the reduction in flight. */
  private static final class Round {
    final long step;
    final float[] buffer;
    final ActorRef<StatusReply<Reduced>> replyTo;
    final long startNanos = System.nanoTime();
    final int expected;
    final Duration deadline;
    int received;
    /** Regions of {@link #buffer} lent to Artery's serializer; null until the first. */
    LentBuffer lent;

    Round(long step, float[] buffer, ActorRef<StatusReply<Reduced>> replyTo, int expected, Duration deadline) {
      this.step = step;
      this.buffer = buffer;
      this.replyTo = replyTo;
      this.expected = expected;
      this.deadline = deadline;
    }
  }

  private final String jobId;
  private final long generation;
  private final int rank;
  private final int worldSize;
  private final AllReduceSettings settings;
  private final TimerScheduler<RingMessage> timers;

  private ActorRef<RingMessage> right;
  private Round current;
  /** Length of the buffer being reduced; every rank's must be the same. */
  private int bufferLength;
  private long lastCompletedStep = -1;
  /** Chunks of steps not started yet, in arrival order per step. */
  private final Map<Long, List<InboundChunk>> early = new TreeMap<>();
  /** Set once a deadline was missed: the ring is broken for good. */
  private String brokenBecause;
  /** Smoothed round time, for later deadlines; negative until the first round completed. */
  private double smoothedNanos = -1;

  private Edge edge = Edge.UNCONNECTED;
  /** The tensor link to the right neighbour, while it is being set up and while it is up. */
  private LinkSender link;
  /** Frames for the link that its queue had no room for yet, in sending order. */
  private final ArrayDeque<LinkSender.Frame> waitingForLink = new ArrayDeque<>();
  /**
   * The reply of a round that is complete while the link's writer or Artery's serializer may
   * still read its buffer: it goes out once both are done with it.
   */
  private Runnable replyWhenDrained;
  /** The completed round's regions that Artery may still have to write, while its reply waits. */
  private LentBuffer lentOut;
  /** This peer's id and key in its node's tensor link, once a left neighbour asked; else null. */
  private TensorLink.Registration linkTarget;
  /** Where received chunk arrays go back to for the link's readers, once a left neighbour linked. */
  private ChunkArrayPool recycled;
  private ActorRef<LinkSender.Event> linkEvents;

  private long rounds;
  private long staleDropped;
  private long chunksSent;
  private long floatsSent;
  private long linkChunksSent;

  /** A peer for rank {@code rank} of {@code worldSize} in {@code generation} of {@code jobId}. */
  public static Behavior<RingMessage> create(
      String jobId, long generation, int rank, int worldSize, AllReduceSettings settings) {
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank " + rank + " is outside world size " + worldSize);
    }
    return Behaviors.setup(
        context -> Behaviors.withTimers(
            timers -> new AllReducePeer(context, timers, jobId, generation, rank, worldSize, settings)));
  }

  private AllReducePeer(
      ActorContext<RingMessage> context,
      TimerScheduler<RingMessage> timers,
      String jobId,
      long generation,
      int rank,
      int worldSize,
      AllReduceSettings settings) {
    super(context);
    this.timers = timers;
    this.jobId = jobId;
    this.generation = generation;
    this.rank = rank;
    this.worldSize = worldSize;
    this.settings = settings;
  }

  @Override
  public Receive<RingMessage> createReceive() {
    return newReceiveBuilder()
        .onMessage(InboundChunk.class, this::onChunk)
        .onMessage(Connect.class, this::onConnect)
        .onMessage(Reduce.class, this::onReduce)
        .onMessage(Abort.class, this::onAbort)
        .onMessage(RoundTimedOut.class, this::onRoundTimedOut)
        .onMessage(LentWritten.class, this::onLentWritten)
        .onMessage(DrainTimedOut.class, this::onDrainTimedOut)
        .onMessage(GetStats.class, this::onGetStats)
        .onMessage(LinkEndpointRequest.class, this::onLinkEndpointRequest)
        .onMessage(EndpointAnswer.class, this::onEndpointAnswer)
        .onMessage(LinkChanged.class, this::onLinkChanged)
        .onSignal(PostStop.class, signal -> onPostStop())
        .build();
  }

  private Behavior<RingMessage> onConnect(Connect connect) {
    if (connect.ring().size() != worldSize) {
      throw new IllegalArgumentException(
          "ring of " + connect.ring().size() + " peers for world size " + worldSize);
    }
    if (connect.ring().get((rank + 1) % worldSize).equals(right)) {
      return this; // the same neighbour again: keep the edge as it is
    }
    if (current != null || replyWhenDrained != null) {
      // The chunks of the running round would go partly to one neighbour and partly to another.
      getContext().getLog().warn("job {} generation {}: rank {} ignored a Connect during the round of step {}",
          jobId, generation, rank, current != null ? current.step : lastCompletedStep);
      return this;
    }
    right = connect.ring().get((rank + 1) % worldSize);
    closeLink();
    if (isInThisJvm(right)) {
      useEdge(Edge.IN_JVM, "plain references in this JVM");
    } else if (settings.transport() == AllReduceSettings.Transport.ARTERY) {
      useEdge(Edge.ARTERY, "Artery (kaon.allreduce.transport = artery)");
    } else {
      edge = Edge.CONNECTING;
      try {
        getContext().ask(
            LinkEndpoint.class,
            right,
            TensorLink.get(getContext().getSystem()).settings().setupTimeout(),
            LinkEndpointRequest::new,
            (endpoint, failure) -> new EndpointAnswer(endpoint, failure == null ? null : failure.toString()));
      } catch (RuntimeException e) {
        useEdge(Edge.ARTERY, "Artery, since this node's tensor link cannot start: " + e);
      }
    }
    return this;
  }

  private boolean isInThisJvm(ActorRef<RingMessage> peer) {
    // Refs to local actors carry no host; a ref that came back through serialization carries
    // this system's own address.
    Address address = peer.path().address();
    return !address.hasGlobalScope() || address.equals(getContext().getSystem().address());
  }

  private void useEdge(Edge newEdge, String how) {
    edge = newEdge;
    getContext().getLog().info("job {} generation {}: ring edge rank {} -> rank {} ({}) uses {}",
        jobId, generation, rank, (rank + 1) % worldSize, right.path().address(), how);
  }

  private Behavior<RingMessage> onLinkEndpointRequest(LinkEndpointRequest request) {
    if (settings.transport() != AllReduceSettings.Transport.LINK) {
      request.replyTo().tell(new LinkEndpoint(null, 0, -1, null,
          "kaon.allreduce.transport is artery on " + getContext().getSystem().address()));
      return this;
    }
    try {
      TensorLink tensorLink = TensorLink.get(getContext().getSystem());
      if (linkTarget == null) {
        linkTarget = tensorLink.register(getContext().getSelf());
        recycled = tensorLink.arrays();
      }
      request.replyTo().tell(new LinkEndpoint(tensorLink.host(), tensorLink.port(), linkTarget.id(), linkTarget.key(), null));
    } catch (RuntimeException e) {
      request.replyTo().tell(new LinkEndpoint(null, 0, -1, null, "the tensor link of "
          + getContext().getSystem().address() + " cannot start: " + e));
    }
    return this;
  }

  private Behavior<RingMessage> onEndpointAnswer(EndpointAnswer answer) {
    if (edge != Edge.CONNECTING || link != null) {
      return this;
    }
    LinkEndpoint endpoint = answer.endpoint();
    if (endpoint == null || endpoint.unavailable() != null) {
      useEdge(Edge.ARTERY, "Artery, since no tensor link could be set up: "
          + (endpoint == null ? answer.failure() : endpoint.unavailable()));
      return this;
    }
    if (linkEvents == null) {
      linkEvents = getContext().messageAdapter(LinkSender.Event.class, LinkChanged::new);
    }
    try {
      link = TensorLink.get(getContext().getSystem()).connect(
          endpoint.host(), endpoint.port(),
          new TensorLinkFormat.Handshake(endpoint.target(), jobId, generation), endpoint.key(), linkEvents);
    } catch (RuntimeException e) {
      useEdge(Edge.ARTERY, "Artery, since no tensor link could be set up: " + e);
    }
    return this;
  }

  private Behavior<RingMessage> onLinkChanged(LinkChanged changed) {
    LinkSender.Event event = changed.event();
    if (event.sender() != link) {
      return this; // a sender this peer closed already
    }
    if (event instanceof LinkSender.Up) {
      useEdge(Edge.LINK, "a tensor link to " + link.address());
    } else if (event instanceof LinkSender.Writable) {
      offerWaiting();
      replyIfDrained();
    } else if (event instanceof LinkSender.Drained) {
      replyIfDrained();
    } else if (event instanceof LinkSender.Down down) {
      link = null;
      String how = "Artery from now on, since the tensor link to " + down.sender().address() + " is down: " + down.reason();
      if (edge == Edge.LINK) {
        edge = Edge.ARTERY;
        getContext().getLog().warn("job {} generation {}: ring edge rank {} -> rank {} uses {}",
            jobId, generation, rank, (rank + 1) % worldSize, how);
      } else {
        useEdge(Edge.ARTERY, how);
      }
      // These were never given to the link, so Artery carries them without any risk of a
      // duplicate; their regions are unchanged, since the neighbour has not seen them yet.
      while (!waitingForLink.isEmpty()) {
        LinkSender.Frame frame = waitingForLink.poll();
        right.tell(new TensorChunk(jobId, generation, frame.step(), frame.round(), frame.chunk(), frame.offset(),
            Arrays.copyOfRange(frame.buffer(), frame.offset(), frame.offset() + frame.length())));
      }
      // The writer has stopped, so the link reads the buffer no more.
      replyIfDrained();
    }
    return this;
  }

  private void offerWaiting() {
    while (!waitingForLink.isEmpty() && link.offer(waitingForLink.peek())) {
      waitingForLink.poll();
      linkChunksSent++;
    }
  }

  private void replyIfDrained() {
    if (replyWhenDrained != null && isDrained()) {
      sendPendingReply();
    }
  }

  /**
   * Whether nothing reads the completed round's buffer any more; if something does, it says so
   * when done (a {@link LinkSender.Drained} or a {@link LentWritten}).
   */
  private boolean isDrained() {
    boolean linkDone = link == null || (waitingForLink.isEmpty() && !link.awaitDrained());
    if (lentOut == null) {
      return linkDone;
    }
    long step = lastCompletedStep;
    ActorRef<RingMessage> self = getContext().getSelf();
    return lentOut.whenWritten(() -> self.tell(new LentWritten(step))) && linkDone;
  }

  private void sendPendingReply() {
    timers.cancel(DrainTimedOut.class);
    lentOut = null;
    Runnable reply = replyWhenDrained;
    replyWhenDrained = null;
    reply.run();
  }

  private Behavior<RingMessage> onLentWritten(LentWritten written) {
    if (written.step() == lastCompletedStep) {
      replyIfDrained();
    }
    return this;
  }

  private Behavior<RingMessage> onDrainTimedOut(DrainTimedOut timeout) {
    if (replyWhenDrained != null && lentOut != null && lentOut.unwritten() > 0) {
      // Artery has not serialized them in all this time: its connection is gone or stuck. The
      // neighbour, short of these chunks, misses its own deadline; the sums here are complete.
      getContext().getLog().warn("job {} generation {}: rank {} withdraws {} chunks of step {} that Artery did not write in {} ms",
          jobId, generation, rank, lentOut.unwritten(), timeout.step(), settings.minRoundTimeout().toMillis());
      lentOut.withdraw();
      lentOut = null;
      replyIfDrained();
    }
    if (replyWhenDrained != null && link != null) {
      // The neighbour stopped reading and the writer is stuck in a blocked write. Closing the
      // socket ends it; its Down then releases the reply (the sums here are complete) and the
      // neighbour, short of chunks, misses its own deadline.
      getContext().getLog().warn("job {} generation {}: rank {} closes its tensor link to {}: step {} still not written after {} ms",
          jobId, generation, rank, link.address(), timeout.step(), settings.minRoundTimeout().toMillis());
      link.shutDown();
    }
    return this;
  }

  private void closeLink() {
    if (link != null) {
      link.close();
      link = null;
    }
    waitingForLink.clear();
  }

  private Behavior<RingMessage> onPostStop() {
    closeLink();
    withdrawLent();
    if (linkTarget != null) {
      TensorLink.get(getContext().getSystem()).unregister(linkTarget.id());
    }
    return this;
  }

  private Behavior<RingMessage> onReduce(Reduce reduce) {
    String refusal = refusal(reduce);
    if (refusal != null) {
      reduce.replyTo().tell(StatusReply.error(refusal));
      return this;
    }
    Duration deadline = nextDeadline();
    bufferLength = reduce.buffer().length;
    current = new Round(reduce.step(), reduce.buffer(), reduce.replyTo(), expectedChunks(), deadline);
    if (current.expected == 0) {
      complete();
      return this;
    }
    timers.startSingleTimer(RoundTimedOut.class, new RoundTimedOut(reduce.step()), deadline);
    sendSegment(rank, 0);
    early.keySet().removeIf(step -> step < reduce.step());
    List<InboundChunk> held = early.remove(reduce.step());
    if (held != null) {
      for (InboundChunk chunk : held) {
        if (current == null) {
          break;
        }
        accept(chunk);
      }
    }
    return this;
  }

  private String refusal(Reduce reduce) {
    if (brokenBecause != null) {
      return brokenBecause;
    }
    if (right == null && worldSize > 1) {
      return "all-reduce peer of rank " + rank + " is not connected to its ring yet";
    }
    if (current != null) {
      return "all-reduce of step " + current.step + " is still running; step " + reduce.step() + " must wait";
    }
    if (replyWhenDrained != null) {
      return "all-reduce of step " + lastCompletedStep + " is still being written to the tensor link; step "
          + reduce.step() + " must wait";
    }
    if (reduce.step() <= lastCompletedStep) {
      return "step " + reduce.step() + " was already reduced (last: " + lastCompletedStep + ")";
    }
    return null;
  }

  private Behavior<RingMessage> onChunk(InboundChunk chunk) {
    if (chunk.generation() != generation || !chunk.jobId().equals(jobId)) {
      staleDropped++;
      getContext().getLog().debug(
          "dropped chunk of {} generation {} (this peer: {} generation {})",
          chunk.jobId(), chunk.generation(), jobId, generation);
      return this;
    }
    if (chunk.length() == 0) {
      // Withdrawn by its sender, whose round ended before Artery wrote it (see LentBuffer).
      staleDropped++;
      getContext().getLog().debug("dropped a withdrawn chunk of step {} round {}", chunk.step(), chunk.round());
      return this;
    }
    if (current != null && chunk.step() == current.step) {
      accept(chunk);
    } else if (chunk.step() > lastCompletedStep && (current == null || chunk.step() > current.step)) {
      early.computeIfAbsent(chunk.step(), s -> new ArrayList<>()).add(chunk);
    } else {
      getContext().getLog().warn(
          "dropped late chunk of step {} round {} (current step {})",
          chunk.step(), chunk.round(), current == null ? lastCompletedStep : current.step);
    }
    return this;
  }

  /** Adds or copies one chunk from the left neighbour and passes it on. */
  private void accept(InboundChunk chunk) {
    int round = chunk.round();
    int lastRound = 2 * (worldSize - 1) - 1;
    int segment = Math.floorMod(rank - round - 1, worldSize);
    int start = segmentStart(segment) + chunk.chunk() * settings.chunkFloats();
    int length = Math.min(settings.chunkFloats(), segmentStart(segment + 1) - start);
    if (round > lastRound || chunk.offset() != start || chunk.length() != length || length <= 0) {
      fail("protocol violation from rank " + Math.floorMod(rank - 1, worldSize) + ": chunk "
          + chunk.chunk() + " of round " + round + " at offset " + chunk.offset() + " with "
          + chunk.length() + " floats, expected offset " + start + " and " + length + " floats");
      return;
    }
    if (round < worldSize - 1) {
      chunk.addTo(current.buffer, start);
    } else {
      chunk.copyTo(current.buffer, start);
    }
    if (recycled != null && chunk instanceof TensorChunk owned) {
      // This peer owns every array it receives (a sender hands it over), and is done with it.
      recycled.give(owned.data());
    }
    if (round < lastRound) {
      send(round + 1, chunk.chunk(), start, length);
    }
    if (++current.received == current.expected) {
      complete();
    }
  }

  private void sendSegment(int segment, int round) {
    int start = segmentStart(segment);
    int end = segmentStart(segment + 1);
    for (int c = 0, offset = start; offset < end; c++, offset += settings.chunkFloats()) {
      send(round, c, offset, Math.min(settings.chunkFloats(), end - offset));
    }
  }

  private void send(int round, int chunk, int offset, int length) {
    if (edge == Edge.LINK) {
      // No copy: the link's writer reads the region itself (see LinkSender for why that is safe).
      LinkSender.Frame frame = new LinkSender.Frame(current.step, round, chunk, offset, length, current.buffer);
      if (waitingForLink.isEmpty() && link.offer(frame)) {
        linkChunksSent++;
      } else {
        waitingForLink.add(frame);
      }
    } else if (edge == Edge.IN_JVM) {
      // A copy: the neighbour reads it later on another thread, while this rank goes on writing
      // into its buffer, and it may be more than a round behind.
      float[] data = Arrays.copyOfRange(current.buffer, offset, offset + length);
      right.tell(new TensorChunk(jobId, generation, current.step, round, chunk, offset, data));
    } else {
      // Artery: its serializer reads the region itself (see LentBuffer for why that is safe).
      if (current.lent == null) {
        current.lent = new LentBuffer(current.buffer);
      }
      current.lent.lend();
      right.tell(new TensorChunkView(jobId, generation, current.step, round, chunk, offset, length, current.lent));
    }
    chunksSent++;
    floatsSent += length;
  }

  private void complete() {
    timers.cancel(RoundTimedOut.class);
    long nanos = System.nanoTime() - current.startNanos;
    smoothedNanos = smoothedNanos < 0 ? nanos : 0.8 * smoothedNanos + 0.2 * nanos;
    rounds++;
    lastCompletedStep = current.step;
    ActorRef<StatusReply<Reduced>> replyTo = current.replyTo;
    Reduced reduced = new Reduced(current.step, current.buffer, nanos);
    lentOut = current.lent;
    current = null;
    // The caller may write into the buffer as soon as it has it, while the link's writer or
    // Artery's serializer may still be reading chunks out of it. The timer keeps a stuck writer
    // from holding it forever.
    replyWhenDrained = () -> replyTo.tell(StatusReply.success(reduced));
    if (isDrained()) {
      sendPendingReply();
    } else {
      timers.startSingleTimer(DrainTimedOut.class, new DrainTimedOut(reduced.step()), settings.minRoundTimeout());
    }
  }

  /** Regions lent to Artery will not be written now: the buffer goes back to its owner. */
  private void withdrawLent() {
    if (current != null && current.lent != null) {
      current.lent.withdraw();
    }
    if (lentOut != null) {
      lentOut.withdraw();
    }
  }

  private Behavior<RingMessage> onRoundTimedOut(RoundTimedOut timeout) {
    if (current != null && current.step == timeout.step()) {
      int left = Math.floorMod(rank - 1, worldSize);
      fail("all-reduce of step " + current.step + " (job " + jobId + ", generation " + generation
          + ", rank " + rank + " of " + worldSize + ") missed its deadline of "
          + current.deadline.toMillis() + " ms: received " + current.received + " of "
          + current.expected + " chunks; rank " + left + " (or a rank before it in the ring) is not responding");
    }
    return this;
  }

  private Behavior<RingMessage> onAbort(Abort abort) {
    if (current != null) {
      timers.cancel(RoundTimedOut.class);
      withdrawLent();
      brokenBecause = abort.reason();
      current.replyTo.tell(StatusReply.error(abort.reason()));
      current = null;
      early.clear();
    } else if (brokenBecause == null) {
      brokenBecause = abort.reason();
      early.clear();
    }
    return this;
  }

  private void fail(String reason) {
    timers.cancel(RoundTimedOut.class);
    withdrawLent();
    brokenBecause = reason;
    getContext().getLog().error(reason);
    current.replyTo.tell(StatusReply.error(reason));
    current = null;
    early.clear();
  }

  private Behavior<RingMessage> onGetStats(GetStats get) {
    get.replyTo().tell(new Stats(rounds, staleDropped, chunksSent, floatsSent, linkChunksSent, edge));
    return this;
  }

  private Duration nextDeadline() {
    if (smoothedNanos < 0) {
      return settings.firstRoundTimeout();
    }
    Duration scaled = Duration.ofNanos((long) (smoothedNanos * settings.timeoutFactor()));
    return scaled.compareTo(settings.minRoundTimeout()) > 0 ? scaled : settings.minRoundTimeout();
  }

  /** Chunks this rank receives in one reduction: every round brings one whole segment. */
  private int expectedChunks() {
    int total = 0;
    for (int round = 0; round < 2 * (worldSize - 1); round++) {
      total += chunksIn(Math.floorMod(rank - round - 1, worldSize));
    }
    return total;
  }

  private int chunksIn(int segment) {
    int length = segmentStart(segment + 1) - segmentStart(segment);
    return (length + settings.chunkFloats() - 1) / settings.chunkFloats();
  }

  /** Segments split the buffer as evenly as possible; segment {@code W} is the end. */
  private int segmentStart(int segment) {
    return (int) ((long) bufferLength * segment / worldSize);
  }
}
