package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.NotSerializableException;
import java.util.List;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import org.junit.jupiter.api.Test;

/** A job's state survives its snapshot format in every phase, with every part of its course. */
class JobStateSerializerTest {

  private static final JobStateSerializer SERIALIZER = new JobStateSerializer(null);
  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 3, 128, OptimizerSpec.sgd(0.1f, 0.9f), 7, 500,
      "model.params", 100);

  private static JobState.Course course() {
    return new JobState.Course(SPEC, 3, 2, StateSource.parse("memory:job-1-worker-0"),
        List.of(new EpochMetrics(1, 0.5, 0.8, 0.81, 40_000, 1.5, 2, 468, 59_904, true),
            new EpochMetrics(2, 0.4, 0.85, 0.83, 41_000, 1.4, 3, 936, 59_904, false)),
        936, List.of(new CheckpointInfo("step-800-ab", 800, 1, 875_000, "ef".repeat(32)),
            new CheckpointInfo("step-900-cd", 900, 1, 875_001, "01".repeat(32))),
        1, 3, List.of(0, 2), 4,
        List.of(new GenerationInfo(1, 3, 0, "job submitted", "init", List.of(0, 1, 2), 1_764_000_000_000L),
            new GenerationInfo(2, 2, 900, "rank 1 failed", "checkpoint:step-900-cd", List.of(0, 2), 1_764_000_060_000L),
            new GenerationInfo(3, 2, 936, "scaled", "memory:job-1-worker-0", List.of(0, 2), 0)));
  }

  private static Object roundTrip(JobState state) throws NotSerializableException {
    return SERIALIZER.fromBinary(SERIALIZER.toBinary(state), SERIALIZER.manifest(state));
  }

  @Test
  void aJobNotSubmittedYet() throws Exception {
    assertEquals(new JobState.Unsubmitted(), roundTrip(new JobState.Unsubmitted()));
  }

  @Test
  void anActiveJobBeforeAndAfterItsFirstResult() throws Exception {
    assertEquals(new JobState.Active(course(), false), roundTrip(new JobState.Active(course(), false)));
    assertEquals(new JobState.Active(course(), true), roundTrip(new JobState.Active(course(), true)));
  }

  @Test
  void anEndedJobWithItsOutcome() throws Exception {
    JobState succeeded = new JobState.Ended(course(), JobStatus.Phase.SUCCEEDED, 0.8812, "d1g3st", "");
    JobState failed = new JobState.Ended(course(), JobStatus.Phase.FAILED, Double.NaN, "", "no data");
    assertEquals(succeeded, roundTrip(succeeded));
    assertEquals(failed, roundTrip(failed));
  }

  @Test
  void aSubmittedJobWithNothingDoneYet() throws Exception {
    JobState submitted = new JobState.Unsubmitted().apply(new JobEvent.JobSubmitted(SPEC, 1_764_000_000_000L));
    assertEquals(submitted, roundTrip(submitted));
  }

  @Test
  void anUnknownManifestOrOutcomeIsRefusedNotGuessed() {
    byte[] active = SERIALIZER.toBinary(new JobState.Active(course(), true));
    assertThrows(NotSerializableException.class, () -> SERIALIZER.fromBinary(active, "S9"));
    byte[] oddOutcome = kaon.protocol.v1.JobStateSnapshot.newBuilder().setPhase(kaon.protocol.v1.JobStateSnapshot.Phase.ENDED)
        .setOutcome("RUNNING").build().toByteArray();
    assertThrows(NotSerializableException.class, () -> SERIALIZER.fromBinary(oddOutcome, JobStateSerializer.STATE));
  }
}
