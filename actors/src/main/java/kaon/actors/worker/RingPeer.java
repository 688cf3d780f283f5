package kaon.actors.worker;

import java.util.List;
import java.util.Locale;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * A worker's end of its generation's ring: the {@link AllReducePeer} it starts for each run, and
 * how that peer's chunks reach the next rank as the peer last said ({@link
 * kaon.actors.allreduce.RingEdge.EdgeChanged}), for the worker's {@link WorkerReport.Placed}
 * reports. Plain state of one {@link DeviceWorker}, used on its thread.
 */
final class RingPeer {

  private final ActorContext<?> context;
  private final AllReduceSettings settings;
  /** Where the peer tells each change of its edge (the worker's adapter). */
  private final ActorRef<kaon.actors.allreduce.RingEdge.EdgeChanged> edgeNews;
  private ActorRef<RingMessage> peer;
  private kaon.actors.allreduce.RingEdge.EdgeChanged edge;

  RingPeer(ActorContext<?> context, AllReduceSettings settings,
      ActorRef<kaon.actors.allreduce.RingEdge.EdgeChanged> edgeNews) {
    this.context = context;
    this.settings = settings;
    this.edgeNews = edgeNews;
  }

  /** Starts the peer of rank {@code rank} of {@code worldSize} in {@code generation} of {@code jobId}. */
  ActorRef<RingMessage> start(String jobId, long generation, int rank, int worldSize) {
    peer = context.spawn(AllReducePeer.create(jobId, generation, rank, worldSize, settings), "allreduce-" + generation);
    edge = null;
    return peer;
  }

  /** Whether a peer runs (between {@link #start} and {@link #stop}). */
  boolean running() {
    return peer != null;
  }

  ActorRef<RingMessage> ref() {
    return peer;
  }

  /** The ring began: the peer connects to its neighbours, and says how. */
  void connect(List<ActorRef<RingMessage>> ring) {
    peer.tell(new AllReducePeer.Connect(ring, edgeNews));
  }

  /** A step waiting for its all-reduce ends now rather than at the round's deadline. */
  void abort(String reason) {
    if (peer != null) {
      peer.tell(new AllReducePeer.Abort(reason));
    }
  }

  void stop() {
    if (peer != null) {
      context.stop(peer);
      peer = null;
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
    return new WorkerReport.Placed(generation, rank, context.getSystem().address().toString(), device,
        edge == null ? "" : edge.edge().name().toLowerCase(Locale.ROOT).replace('_', '-'),
        edge == null ? "" : edge.how(), kaon.actors.liveness.NodeLiveness.endpointOf(context.getSystem()));
  }
}
