package kaon.actors.job;

import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.checkpoint.CheckpointStore;

/** What a job's coordinator does with its committed checkpoints: read one back, delete old ones. */
interface JobCheckpoints {

  /** Completes once {@code checkpoint} was read and passed its checksum; fails with the reason otherwise. */
  CompletionStage<?> verify(CheckpointInfo checkpoint);

  /**
   * Deletes the job's checkpoints below {@code keepFromStep}, except those in {@code keep}: all
   * the store lists, committed or not. It reads the job's checkpoint rows, and with them the
   * tombstones of every checkpoint deleted before (for days), so it is for now and then.
   */
  CompletionStage<Integer> deleteOlderThan(long keepFromStep, Set<String> keep);

  /** Deletes {@code checkpoints}, which the coordinator knows, without reading anything. */
  CompletionStage<?> delete(List<CheckpointInfo> checkpoints);

  /** How many committed checkpoints the store keeps per job ({@code kaon.checkpoint.keep-last}). */
  int keepLast();

  /** Job {@code jobId}'s checkpoints in {@code store}. */
  static JobCheckpoints in(CheckpointStore store, String jobId) {
    return new JobCheckpoints() {
      @Override
      public CompletionStage<?> verify(CheckpointInfo checkpoint) {
        return store.load(jobId, checkpoint.id());
      }

      @Override
      public CompletionStage<Integer> deleteOlderThan(long keepFromStep, Set<String> keep) {
        return store.deleteOlderThan(jobId, keepFromStep, keep);
      }

      @Override
      public CompletionStage<?> delete(List<CheckpointInfo> checkpoints) {
        return java.util.concurrent.CompletableFuture.allOf(checkpoints.stream()
            .map(c -> store.delete(jobId, c).toCompletableFuture()).toArray(java.util.concurrent.CompletableFuture[]::new));
      }

      @Override
      public int keepLast() {
        return store.settings().keepLast();
      }
    };
  }
}
