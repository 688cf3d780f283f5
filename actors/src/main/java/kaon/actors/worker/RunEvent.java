package kaon.actors.worker;

import kaon.actors.checkpoint.CheckpointData;

/**
 * What a worker's training thread ({@link TrainingRun}) tells its worker, through an adapter of
 * the worker's: the thread knows the worker only by this protocol of its own.
 */
sealed interface RunEvent permits RunEvent.ReplicaReady, RunEvent.RunEnded, RunEvent.Report, RunEvent.Progressed,
    RunEvent.CheckpointReady {

  /**
   * The replica is built (and the checkpoint loaded); {@code needsState} when its state must come
   * from another rank when the ring begins.
   */
  record ReplicaReady(long generation, boolean needsState) implements RunEvent {}

  /**
   * The generation is over for this rank, with a failure message or null; {@code retryable} when
   * the job can go on in a new generation (a ring that broke). The thread keeps the state of step
   * {@code heldStep} ({@code stateBytes} encoded; -1: none) for the next generation, unless {@code
   * threadEnded}.
   */
  record RunEnded(long generation, String failure, boolean retryable, long heldStep, int stateBytes, boolean threadEnded)
      implements RunEvent {}

  /** A report for the coordinator that must not be lost (the worker sends it through its outbox). */
  record Report(long generation, ReportBody body) implements RunEvent {}

  /** What {@link Report} carries; the worker adds generation, rank and sequence number. */
  sealed interface ReportBody {}

  /**
   * An epoch's sums: the training ones over every rank (they travel with the gradients), the
   * test ones of this rank's share of the test split.
   */
  record EpochSums(int epoch, double lossSum, long correct, long examples, boolean eachSampleOnce, long testCorrect,
      long testExamples, long trainNanos, long stepsDone) implements ReportBody {}

  /**
   * The digest of the final parameters; rank 0 adds {@code model}, the parameters file whose
   * sha256 the digest is, to be stored before the digest goes out (null on other ranks).
   */
  record Finished(String digest, byte[] model) implements ReportBody {}

  /** Rank 0's thread: how far the generation has come, for the coordinator. */
  record Progressed(WorkerReport.StepProgress progress) implements RunEvent {}

  /** Rank 0's thread: a checkpoint to write. */
  record CheckpointReady(long generation, CheckpointData data) implements RunEvent {}
}
