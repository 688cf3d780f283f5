package kaon.actors.worker;

import kaon.actors.checkpoint.CheckpointInfo;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * What a {@link DeviceWorker} tells the owner of its job: the replies of the worker's protocol.
 * They belong to the worker, and the job's coordinator adapts them into its own commands, so
 * that the worker knows nothing of the job package (dependencies run one way: job, then worker,
 * then training, all-reduce and checkpoints).
 *
 * <p>Every report names the generation it is about; a coordinator ignores those of any other.
 * Reports that change the job's journal ({@link EpochReport}, {@link CheckpointWritten}, {@link
 * Finished}) carry a sequence number and are resent until {@link DeviceWorker.Ack}ed.
 */
public sealed interface WorkerReport extends KryoWireMessage {

  /** The generation the report is about. */
  long generation();

  /**
   * A rank has its device and replica; {@code peer} is its end of the ring. {@code needsState}:
   * its state must come from another rank (see {@link DeviceWorker.Begin}).
   */
  record Ready(long generation, int rank, ActorRef<RingMessage> peer, String device, boolean needsState)
      implements WorkerReport {}

  /**
   * Where a rank runs and how its chunks reach the next rank: said when it is ready, each time its
   * ring edge changes, and to a coordinator that re-attaches; never persisted.
   *
   * @param node the cluster address of the rank's node
   * @param device the device it trains on
   * @param edge how its chunks reach rank {@code rank + 1}: {@code shared-memory}, {@code in-jvm}, {@code artery}, {@code
   *     connecting} (Artery while a tensor link is set up) or {@code link}; empty before the ring
   * @param how why that edge, in words (the setting, or why a link fell back to Artery)
   * @param liveness where the coordinator watches the node for the end of its process; null when
   *     the node's liveness listener is off
   */
  record Placed(long generation, int rank, String node, String device, String edge, String how,
      kaon.actors.liveness.NodeLiveness.Endpoint liveness) implements WorkerReport {}

  /**
   * A rank cannot go on. {@code retryable}: the job can go on without it in a new generation (a
   * missed all-reduce deadline, a lost node, no device); otherwise the job fails (unknown task,
   * missing data, a bug). {@code noDevice}: the rank was placed on a node whose devices were all
   * taken, which says the cluster has fewer devices than the generation was sized for.
   */
  record Failed(long generation, int rank, String reason, boolean retryable, boolean noDevice)
      implements WorkerReport {

    /** A failure of the rank itself (not of finding a device). */
    public Failed(long generation, int rank, String reason, boolean retryable) {
      this(generation, rank, reason, retryable, false);
    }
  }

  /** Where rank 0 is inside an epoch (0-based epoch, 1-based step); never persisted. */
  record StepProgress(long generation, int epoch, int step, int stepsPerEpoch, double meanLoss)
      implements WorkerReport {}

  /**
   * A rank's view of a finished epoch: training sums over all ranks (the same on every rank), its
   * own share of the test split (sums, not means, so they add up over ranks).
   */
  record EpochReport(
      long generation,
      int rank,
      long seq,
      int epoch,
      double lossSum,
      long correct,
      long examples,
      boolean eachSampleOnce,
      long testCorrect,
      long testExamples,
      long trainNanos,
      long stepsDone)
      implements WorkerReport {}

  /** Rank 0 wrote a checkpoint; every chunk of it is durable. */
  record CheckpointWritten(long generation, int rank, long seq, CheckpointInfo checkpoint) implements WorkerReport {}

  /** Whether a rank's checkpoint (or model) writes work; {@code problem} is empty once they do again. */
  record CheckpointHealth(long generation, int rank, String problem) implements WorkerReport {}

  /** A rank finished its last step; {@code digest} is the SHA-256 of its parameters. */
  record Finished(long generation, int rank, long seq, String digest) implements WorkerReport {}

  /** Answer to {@link DeviceWorker.Reattach}: the rank still trains {@code generation}. */
  record Reattached(long generation, int rank) implements WorkerReport {}

  /** Answer to {@link DeviceWorker.Reattach}: the rank does not train {@code generation}. */
  record NotRunning(long generation, int rank) implements WorkerReport {}
}
