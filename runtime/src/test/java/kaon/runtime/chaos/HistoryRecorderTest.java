package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.Progress;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Observation.StepsSeen;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the recorder makes of GetJob answers (the store is not touched here). */
class HistoryRecorderTest {

  @TempDir
  Path dir;

  private final AtomicLong now = new AtomicLong(1_000);

  private static Job.Builder job(long generation) {
    return Job.newBuilder().setJobId("j").setPhase(JobPhase.RUNNING).setGeneration(generation).setWorldSize(2)
        .addGenerations(Generation.newBuilder().setGeneration(1).setWorldSize(2).setStateSource("init")
            .setReason("job submitted").addWorkers(0).addWorkers(1).setAtMillis(900));
  }

  @Test
  void recordsNewsOnlyAndTheLiveStep() throws IOException {
    try (HistoryFile file = HistoryFile.create(dir.resolve("h.jsonl"));
        HistoryRecorder recorder = new HistoryRecorder(file, new HistoryRecorder.Store("127.0.0.1", 1, "k", "j"), now::get)) {
      recorder.record(new JobSubmitted(800, "j", 2, 0, 128, 2, 2, false, ""));
      // Rank 0 is at step 120 of epoch 1 (468 steps each): the live step, not steps_done (0).
      recorder.observe(job(1).setProgress(Progress.newBuilder().setEpoch(1).setStep(120).setStepsPerEpoch(468)
          .setMeanLoss(0.5)).build());
      now.addAndGet(1_000);
      // The same again: nothing new, within the heartbeat.
      recorder.observe(job(1).setProgress(Progress.newBuilder().setEpoch(1).setStep(120).setStepsPerEpoch(468)
          .setMeanLoss(0.5)).build());
      now.addAndGet(1_000);
      // Epoch 1 is recorded while epoch 2 runs; then the coordinator moves and has no progress yet:
      // the step stays at 478 rather than go back to steps_done (468), and the epoch is recorded once.
      EpochResult epoch1 = EpochResult.newBuilder().setEpoch(1).setStepsDone(468).setSamples(59_904)
          .setEachSampleOnce(true).setWorldSize(2).setMeanLoss(0.5).setTestAccuracy(0.8).build();
      recorder.observe(job(1).setStepsDone(468).addEpochs(epoch1).setProgress(Progress.newBuilder().setEpoch(2)
          .setStep(10).setStepsPerEpoch(468).setMeanLoss(0.45)).build());
      now.addAndGet(1_000);
      recorder.observe(job(1).setStepsDone(468).addEpochs(epoch1).build());
      now.addAndGet(1_000);
      recorder.observe(job(1).setStepsDone(936).addEpochs(epoch1).setPhase(JobPhase.SUCCEEDED).setTestAccuracy(0.82)
          .setDigest("d").build());
      // After the end, nothing more.
      recorder.observe(job(1).setStepsDone(936).addEpochs(epoch1).setPhase(JobPhase.SUCCEEDED).build());

      assertEquals(List.of(
          new JobSubmitted(800, "j", 2, 0, 128, 2, 2, false, ""),
          new GenerationFormed(900, "j", 1, 2, 0, "init", "job submitted", List.of(0, 1)),
          new StepsSeen(1_000, "j", 1, 120, 468, 2, 0.5, ""),
          new EpochReported(3_000, "j", 1, 468, 59_904, true, 2, 0.5, 0.8),
          new StepsSeen(3_000, "j", 1, 478, 468, 2, 0.45, ""),
          new StepsSeen(5_000, "j", 1, 936, 468, 2, 0.5, ""),
          new JobEnded(5_000, "j", "SUCCEEDED", "", 936, 0.82, "d")), file.observations());
    }
  }
}
