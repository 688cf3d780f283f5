package kaon.actors.worker;

import java.util.List;
import java.util.Locale;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.allreduce.LocalReductions;
import kaon.actors.allreduce.SharedReduction;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * A worker's end of its generation's ring: the {@link AllReducePeer} it starts for each run, and
 * how that peer's chunks reach the next rank as the peer last said ({@link
 * kaon.actors.allreduce.RingEdge.EdgeChanged}), for the worker's {@link WorkerReport.Placed}
 * reports. When every rank of the ring runs in this JVM, the ranks sum through a {@link
 * SharedReduction} instead, and the peer stays idle. Plain state of one {@link DeviceWorker},
 * used on its thread.
 */
final class RingPeer {

  private final ActorContext<?> context;
  private final AllReduceSettings settings;
  /** Where the peer tells each change of its edge (the worker's adapter). */
  private final ActorRef<kaon.actors.allreduce.RingEdge.EdgeChanged> edgeNews;
  private ActorRef<RingMessage> peer;
  private kaon.actors.allreduce.RingEdge.EdgeChanged edge;
  private String jobId;
  private long generation;
  private int worldSize;
  /** The generation's reduction in shared memory, when its ranks all run here; else null. */
  private SharedReduction shared;

  RingPeer(ActorContext<?> context, AllReduceSettings settings,
      ActorRef<kaon.actors.allreduce.RingEdge.EdgeChanged> edgeNews) {
    this.context = context;
    this.settings = settings;
    this.edgeNews = edgeNews;
  }

  /** Starts the peer of rank {@code rank} of {@code worldSize} in {@code generation} of {@code jobId}. */
  ActorRef<RingMessage> start(String jobId, long generation, int rank, int worldSize) {
    leaveShared(); // the last generation's, had it not been given up yet
    peer = context.spawn(AllReducePeer.create(jobId, generation, rank, worldSize, settings), "allreduce-" + generation);
    edge = null;
    this.jobId = jobId;
    this.generation = generation;
    this.worldSize = worldSize;
    return peer;
  }

  /** Whether a peer runs (between {@link #start} and {@link #stop}). */
  boolean running() {
    return peer != null;
  }

  ActorRef<RingMessage> ref() {
    return peer;
  }

  /**
   * The ring began: the peer connects to its neighbours, and says how. Returns the generation's
   * shared reduction when every rank runs in this JVM and the settings allow it, else null (the
   * ring's chunks then carry the sums).
   */
  SharedReduction connect(List<ActorRef<RingMessage>> ring) {
    peer.tell(new AllReducePeer.Connect(ring, edgeNews));
    // Every rank gets the same ring, so all of them decide alike.
    if (shares(ring, settings.sharedMemory(), RuntimeFaults.get(context.getSystem()).enabled())) {
      shared = LocalReductions.get(context.getSystem()).acquire(jobId, generation, worldSize, settings);
    }
    return shared;
  }

  /**
   * Whether a ring sums in shared memory: every rank in this JVM, the setting on, and no runtime
   * faults enabled (those strike the ring's chunks, which shared memory has none of).
   */
  static boolean shares(List<ActorRef<RingMessage>> ring, boolean sharedMemory, boolean runtimeFaults) {
    // A ring of one too: it has nothing to exchange, and the ask to its peer alone cost about
    // 0.24 ms of a 3 ms MLP step (bench/step-profile).
    return sharedMemory && !runtimeFaults && ring.stream().allMatch(ref -> ref.path().address().hasLocalScope());
  }

  /** A step waiting for its all-reduce ends now rather than at the round's deadline. */
  void abort(String reason) {
    if (peer != null) {
      peer.tell(new AllReducePeer.Abort(reason));
    }
    if (shared != null) {
      shared.abort(reason);
    }
  }

  void stop() {
    if (peer != null) {
      context.stop(peer);
      peer = null;
    }
    leaveShared();
  }

  /**
   * Gives up this rank's share of the generation's shared reduction, if it has one: when the
   * worker stops, its children (the peer) stop with it, but the reduction belongs to the node.
   */
  void leaveShared() {
    if (shared != null) {
      // A rank still inside it must not wait for a rank that left.
      shared.abort("generation " + generation + " of job " + jobId + " ended on this rank");
      LocalReductions.get(context.getSystem()).release(jobId, generation);
      shared = null;
    }
  }

  /** The peer's edge changed; whether that is news of the running peer's {@code generation}. */
  boolean edgeChanged(kaon.actors.allreduce.RingEdge.EdgeChanged changed, long generation) {
    if (peer == null || changed.generation() != generation) {
      return false;
    }
    edge = changed;
    return true;
  }

  /** Where rank {@code rank} of {@code generation} runs ({@code device} of this node), and its edge as far as known. */
  WorkerReport.Placed placed(long generation, int rank, String device) {
    String name = edge == null ? "" : edge.edge().name().toLowerCase(Locale.ROOT).replace('_', '-');
    String how = edge == null ? "" : edge.how();
    if (shared != null && edge != null) {
      name = "shared-memory";
      how = "every rank runs in this JVM: each sums one segment of all ranks' buffers, no chunks";
    }
    return new WorkerReport.Placed(generation, rank, context.getSystem().address().toString(), device, name, how,
        kaon.actors.liveness.NodeLiveness.endpointOf(context.getSystem()));
  }
}
