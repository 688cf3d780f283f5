package kaon.actors.allreduce;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.InboundChunk;
import kaon.protocol.LentBuffer;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorChunkView;
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
 * <p>How chunks reach the right neighbour (plain references in one JVM, Artery, or a {@link
 * TensorLink}) is the {@link RingEdge}'s; fencing, early chunks and deadlines do not depend on
 * it. Across JVMs nothing is copied for sending, so a round's reply is a {@link HeldReply} until
 * every chunk was written. Arrays of chunks received over the link go back to the link's readers
 * once added in; chunks received over Artery are read in place ({@link
 * kaon.protocol.FramedTensorChunk}).
 */
public final class AllReducePeer extends AbstractBehavior<RingMessage> {

  /** Local commands. {@link TensorChunk}s from the left neighbour are the other input. */
  public sealed interface Command extends RingMessage
      permits Connect, Reduce, Abort, GetStats, RoundTimedOut {}

  /**
   * The ring in rank order (including this peer). Must come before the first {@link Reduce}.
   * {@code edges} (may be null) hears how this rank's chunks reach its right neighbour, each time
   * that changes (a tensor link that comes up, or goes down).
   */
  public record Connect(List<ActorRef<RingMessage>> ring, ActorRef<RingEdge.EdgeChanged> edges) implements Command {

    /** A ring whose edges nobody follows. */
    public Connect(List<ActorRef<RingMessage>> ring) {
      this(ring, null);
    }
  }

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
   * Counters of this peer, and how its chunks travel.
   *
   * @param rounds completed reductions
   * @param staleDropped chunks dropped because they belong to another generation or job
   * @param chunksSent chunk messages sent to the right neighbour
   * @param floatsSent floats in those chunks
   * @param linkChunksSent those of the chunks that went over the tensor link
   * @param edge how chunks reach the right neighbour now
   */
  public record Stats(long rounds, long staleDropped, long chunksSent, long floatsSent, long linkChunksSent,
      RingEdge.Edge edge) {}

  private record RoundTimedOut(long step) implements Command {}

  private final String jobId;
  private final long generation;
  private final int rank;
  private final int worldSize;
  private final AllReduceSettings settings;
  private final TimerScheduler<RingMessage> timers;

  private ReduceRound<ActorRef<StatusReply<Reduced>>> current;
  /** Where the chunks of the buffer being reduced go; every rank's buffer has the same length. */
  private RingSchedule schedule;
  private long lastCompletedStep = -1;
  /** Chunks of steps not started yet, in arrival order per step. */
  private final Map<Long, List<InboundChunk>> early = new TreeMap<>();
  /** Set once a deadline was missed: the ring is broken for good. */
  private String brokenBecause;
  /** How long rounds take, for the next one's deadline. */
  private final RoundTimes times = new RoundTimes();

  /** How chunks reach the right neighbour, and this peer's registration for its left one's link. */
  private final RingEdge edge;
  /** The reply of the last round, while its buffer may still be read for sending. */
  private final HeldReply heldReply;

  private final PeerFaults faults; // the chaos tooling's chunk faults on this node; off unless enabled

  private long rounds;
  private long staleDropped;
  private final kaon.actors.metrics.KaonMetrics metrics;
  private long chunksSent;
  private long floatsSent;

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
    this.metrics = kaon.actors.metrics.KaonMetrics.get(context.getSystem());
    this.timers = timers;
    this.jobId = jobId;
    this.generation = generation;
    this.rank = rank;
    this.worldSize = worldSize;
    this.settings = settings;
    this.edge = new RingEdge(context, jobId, generation, rank, worldSize, settings);
    this.faults = new PeerFaults(context, RuntimeFaults.get(context.getSystem()), jobId, generation, rank);
    this.heldReply = new HeldReply(context, timers, edge, settings.minRoundTimeout(),
        "job " + jobId + " generation " + generation + ": rank " + rank);
  }

  @Override
  public Receive<RingMessage> createReceive() {
    return newReceiveBuilder()
        .onMessage(InboundChunk.class, this::onChunk)
        .onMessage(Connect.class, this::onConnect)
        .onMessage(Reduce.class, this::onReduce)
        .onMessage(Abort.class, this::onAbort)
        .onMessage(RoundTimedOut.class, this::onRoundTimedOut)
        .onMessage(HeldReply.LentWritten.class, written -> {
          heldReply.onLentWritten(written);
          return this;
        })
        .onMessage(HeldReply.DrainTimedOut.class, timeout -> {
          heldReply.onDrainTimedOut(timeout);
          return this;
        })
        .onMessage(GetStats.class, this::onGetStats)
        .onMessage(RingEdge.LinkEndpointRequest.class, request -> {
          edge.answer(request);
          return this;
        })
        .onMessage(RingEdge.EndpointAnswer.class, answer -> {
          edge.onEndpointAnswer(answer);
          return this;
        })
        .onMessage(RingEdge.LinkChanged.class, changed -> {
          if (edge.onLinkChanged(changed)) {
            heldReply.recheck();
          }
          return this;
        })
        .onSignal(PostStop.class, signal -> onPostStop())
        .build();
  }

  private Behavior<RingMessage> onConnect(Connect connect) {
    if (connect.ring().size() != worldSize) {
      throw new IllegalArgumentException(
          "ring of " + connect.ring().size() + " peers for world size " + worldSize);
    }
    ActorRef<RingMessage> right = connect.ring().get((rank + 1) % worldSize);
    if (right.equals(edge.right())) {
      return this; // the same neighbour again: keep the edge as it is
    }
    if (current != null || heldReply.held()) {
      // The chunks of the running round would go partly to one neighbour and partly to another.
      getContext().getLog().warn("job {} generation {}: rank {} ignored a Connect during the round of step {}",
          jobId, generation, rank, current != null ? current.step : lastCompletedStep);
      return this;
    }
    edge.connect(right, connect.edges());
    return this;
  }

  private Behavior<RingMessage> onPostStop() {
    edge.close();
    withdrawLent();
    return this;
  }

  private Behavior<RingMessage> onReduce(Reduce reduce) {
    String refusal = refusal(reduce);
    if (refusal != null) {
      reduce.replyTo().tell(StatusReply.error(refusal));
      return this;
    }
    Duration deadline = times.deadline(settings);
    schedule = new RingSchedule(worldSize, reduce.buffer().length, settings.chunkFloats());
    current = new ReduceRound<>(reduce.step(), reduce.buffer(), reduce.replyTo(), schedule.expectedChunks(rank), deadline);
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
    if (edge.right() == null && worldSize > 1) {
      return "all-reduce peer of rank " + rank + " is not connected to its ring yet";
    }
    if (current != null) {
      return "all-reduce of step " + current.step + " is still running; step " + reduce.step() + " must wait";
    }
    if (heldReply.held()) {
      return "all-reduce of step " + lastCompletedStep + " is still being written to the tensor link; step "
          + reduce.step() + " must wait";
    }
    if (reduce.step() <= lastCompletedStep) {
      return "step " + reduce.step() + " was already reduced (last: " + lastCompletedStep + ")";
    }
    return null;
  }

  private Behavior<RingMessage> onChunk(InboundChunk chunk) {
    boolean foreign = chunk.generation() != generation || !chunk.jobId().equals(jobId);
    // An empty chunk was withdrawn by its sender, whose round ended before Artery wrote it (see LentBuffer).
    if (foreign || chunk.damage() == null && chunk.length() == 0) {
      staleDropped++;
      metrics.staleChunkDropped();
      getContext().getLog().debug("dropped {} chunk of {} generation {} step {} round {} (this peer: {} generation {})",
          foreign ? "a stale" : "a withdrawn", chunk.jobId(), chunk.generation(), chunk.step(), chunk.round(), jobId,
          generation);
      return this;
    }
    if (chunk.damage() != null) {
      damaged(chunk);
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
    int lastRound = schedule.lastRound();
    int segment = schedule.receivedSegment(rank, round);
    int start = schedule.chunkStart(segment, chunk.chunk());
    int length = schedule.chunkLength(segment, chunk.chunk());
    if (round > lastRound || chunk.offset() != start || chunk.length() != length || length <= 0) {
      fail("protocol violation from rank " + Math.floorMod(rank - 1, worldSize) + ": chunk "
          + chunk.chunk() + " of round " + round + " at offset " + chunk.offset() + " with "
          + chunk.length() + " floats, expected offset " + start + " and " + length + " floats");
      return;
    }
    if (schedule.adds(round)) {
      chunk.addTo(current.buffer, start);
    } else {
      chunk.copyTo(current.buffer, start);
    }
    if (chunk instanceof TensorChunk owned) {
      // This peer owns every array it receives (a sender hands it over), and is done with it.
      edge.recycle(owned.data());
    }
    if (round < lastRound) {
      send(round + 1, chunk.chunk(), start, length);
    }
    if (++current.received == current.expected) {
      complete();
    }
  }

  private void sendSegment(int segment, int round) {
    int start = schedule.segmentStart(segment);
    int end = schedule.segmentStart(segment + 1);
    for (int c = 0, offset = start; offset < end; c++, offset += settings.chunkFloats()) {
      send(round, c, offset, Math.min(settings.chunkFloats(), end - offset));
    }
  }

  private void send(int round, int chunk, int offset, int length) {
    RuntimeFaults.ChunkAction fault = faults.beforeSend(edge, current.step, round, chunk, offset, length, current.buffer);
    if (fault == RuntimeFaults.ChunkAction.DROP) {
      return;
    }
    if (fault == RuntimeFaults.ChunkAction.DELAY) {
      chunksSent++;
      floatsSent += length;
      return;
    }
    boolean corrupt = fault == RuntimeFaults.ChunkAction.CORRUPT;
    if (edge.edge() == RingEdge.Edge.LINK) {
      // No copy: the link's writer reads the region itself (see LinkSender for why that is safe).
      edge.offer(new LinkSender.Frame(current.step, round, chunk, offset, length, current.buffer, corrupt));
    } else if (edge.edge() == RingEdge.Edge.IN_JVM) {
      // A copy: the neighbour reads it later on another thread, while this rank goes on writing
      // into its buffer, and it may be more than a round behind.
      float[] data = Arrays.copyOfRange(current.buffer, offset, offset + length);
      edge.right().tell(new TensorChunk(jobId, generation, current.step, round, chunk, offset, data));
    } else {
      // Artery: its serializer reads the region itself (see LentBuffer for why that is safe).
      if (current.lent == null) {
        current.lent = new LentBuffer(current.buffer);
      }
      current.lent.lend();
      edge.right().tell(new TensorChunkView(jobId, generation, current.step, round, chunk, offset, length, current.lent,
          corrupt));
    }
    chunksSent++;
    floatsSent += length;
  }

  private void complete() {
    timers.cancel(RoundTimedOut.class);
    long nanos = System.nanoTime() - current.startNanos;
    times.record(nanos);
    rounds++;
    lastCompletedStep = current.step;
    ActorRef<StatusReply<Reduced>> replyTo = current.replyTo;
    Reduced reduced = new Reduced(current.step, current.buffer, nanos);
    LentBuffer lent = current.lent;
    current = null;
    heldReply.hold(reduced.step(), () -> replyTo.tell(StatusReply.success(reduced)), lent);
  }

  /** Regions lent to Artery will not be written now: the buffer goes back to its owner. */
  private void withdrawLent() {
    if (current != null && current.lent != null) {
      current.lent.withdraw();
    }
    heldReply.withdraw();
  }

  /** A chunk failed its checksum: not to be summed, the round fails now (not at its deadline), naming the edge. */
  private void damaged(InboundChunk chunk) {
    String reason = faults.damaged(chunk, worldSize);
    if (current != null) {
      fail(reason);
    } else if (brokenBecause == null) {
      getContext().getLog().error(reason);
      brokenBecause = reason;
      early.clear();
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
    get.replyTo().tell(new Stats(rounds, staleDropped, chunksSent, floatsSent, edge.linkChunksSent(), edge.edge()));
    return this;
  }
}
