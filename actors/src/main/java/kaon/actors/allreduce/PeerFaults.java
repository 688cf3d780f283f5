package kaon.actors.allreduce;

import java.util.Arrays;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.InboundChunk;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * The chaos tooling's chunk faults ({@link RuntimeFaults}) as one {@link AllReducePeer} meets them:
 * on the way out, a chunk of its rank dropped, sent late or damaged on the wire; on the way in,
 * the words for a chunk that arrived damaged. Plain state of the peer, on its thread.
 */
final class PeerFaults {

  private final ActorContext<RingMessage> context;
  private final RuntimeFaults faults;
  private final String jobId;
  private final long generation;
  private final int rank;

  PeerFaults(ActorContext<RingMessage> context, RuntimeFaults faults, String jobId, long generation, int rank) {
    this.context = context;
    this.faults = faults;
    this.jobId = jobId;
    this.generation = generation;
    this.rank = rank;
  }

  /**
   * Whether a fault strikes the chunk {@code buffer[offset .. offset + length)} about to go out over
   * {@code edge}: DROP, it is not sent; DELAY, a copy of it was scheduled to go out late (the
   * region changes before then), over Artery whatever the edge; CORRUPT, the caller sends it to be
   * damaged after its checksum; SEND, nothing struck.
   */
  RuntimeFaults.ChunkAction beforeSend(RingEdge edge, long step, int round, int chunk, int offset, int length,
      float[] buffer) {
    RuntimeFaults.ChunkAction fault = faults.chunkAction(jobId, generation, rank, edge.edge() != RingEdge.Edge.IN_JVM);
    if (fault == RuntimeFaults.ChunkAction.DROP) {
      context.getLog().warn("job {} generation {}: rank {} drops chunk {} of round {} of step {} (a runtime fault)",
          jobId, generation, rank, chunk, round, step);
    } else if (fault == RuntimeFaults.ChunkAction.DELAY) {
      float[] data = Arrays.copyOfRange(buffer, offset, offset + length);
      context.scheduleOnce(faults.chunkDelay(jobId, rank), edge.right(),
          new TensorChunk(jobId, generation, step, round, chunk, offset, data));
    }
    return fault;
  }

  /** Why the round fails: {@code chunk} from the left neighbour failed its checksum, with the edge it came over. */
  String damaged(InboundChunk chunk, int worldSize) {
    return "job " + jobId + " generation " + generation + ": chunk " + chunk.chunk() + " of round " + chunk.round()
        + " of step " + chunk.step() + " from rank " + Math.floorMod(rank - 1, worldSize) + " to rank " + rank + ": "
        + chunk.damage();
  }
}
