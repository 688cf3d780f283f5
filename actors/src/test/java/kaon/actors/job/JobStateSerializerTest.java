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

  /** Submitted and started at the first generation's time, as the coordinator records them. */
  private static JobState.Course course() {
    return course(1_764_000_000_000L, 1_764_000_000_000L);
  }

  private static JobState.Course course(long createdAtMillis, long startedAtMillis) {
    return new JobState.Course(SPEC, 3, 2, StateSource.parse("memory:job-1-worker-0"),
        List.of(new EpochMetrics(1, 0.5, 0.8, 0.81, 40_000, 1.5, 2, 468, 59_904, true),
            new EpochMetrics(2, 0.4, 0.85, 0.83, 41_000, 1.4, 3, 936, 59_904, false)),
        936, List.of(new CheckpointInfo("step-800-ab", 800, 1, 875_000, "ef".repeat(32)),
            new CheckpointInfo("step-900-cd", 900, 1, 875_001, "01".repeat(32))),
        1, 3, List.of(0, 2), 4,
        List.of(new GenerationInfo(1, 3, 0, "job submitted", "init", List.of(0, 1, 2), 1_764_000_000_000L),
            new GenerationInfo(2, 2, 900, "rank 1 failed", "checkpoint:step-900-cd", List.of(0, 2), 1_764_000_060_000L),
            new GenerationInfo(3, 2, 936, "scaled", "memory:job-1-worker-0", List.of(0, 2), 0)),
        createdAtMillis, startedAtMillis);
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
    JobState succeeded = new JobState.Ended(course(), JobStatus.Phase.SUCCEEDED, 0.8812, "d1g3st", "", 1_764_000_900_000L);
    JobState failed = new JobState.Ended(course(), JobStatus.Phase.FAILED, Double.NaN, "", "no data", 1_764_000_950_000L);
    assertEquals(succeeded, roundTrip(succeeded));
    assertEquals(failed, roundTrip(failed));
  }

  @Test
  void theTimesAreKeptEachInItsOwnField() throws Exception {
    // Equal in practice (the first generation is recorded with the submission), not by the format.
    JobState ended = new JobState.Ended(course(1_764_000_000_000L, 1_764_000_000_500L), JobStatus.Phase.CANCELLED,
        Double.NaN, "", "cancelled by its owner", 1_764_000_100_000L);
    assertEquals(ended, roundTrip(ended));
  }

  @Test
  void aSnapshotWithoutTheTimesReadsThemFromItsFirstGenerationIfItStillHasIt() throws Exception {
    kaon.protocol.v1.JobStateSnapshot written = kaon.protocol.v1.JobStateSnapshot.parseFrom(
        SERIALIZER.toBinary(new JobState.Active(course(), true)));
    kaon.protocol.v1.JobCourse.Builder old = written.getCourse().toBuilder().clearCreatedAtMillis().clearStartedAtMillis();
    byte[] withFirst = written.toBuilder().setCourse(old).build().toByteArray();
    assertEquals(new JobState.Active(course(1_764_000_000_000L, 1_764_000_000_000L), true),
        SERIALIZER.fromBinary(withFirst, JobStateSerializer.STATE));
    // Past the newest 100 generations the first is gone, and with it the times: not known.
    byte[] withoutFirst = written.toBuilder().setCourse(old.removeHistory(0)).build().toByteArray();
    JobState.Course read = JobState.courseOf((JobState) SERIALIZER.fromBinary(withoutFirst, JobStateSerializer.STATE));
    assertEquals(List.of(0L, 0L), List.of(read.createdAtMillis(), read.startedAtMillis()));
  }

  @Test
  void aSubmittedJobWithNothingDoneYet() throws Exception {
    JobState submitted = new JobState.Unsubmitted().apply(new JobEvent.JobSubmitted(SPEC, 1_764_000_000_000L));
    assertEquals(submitted, roundTrip(submitted));
  }

  /**
   * Bytes this serializer wrote for an ended job when the format was introduced (2026-12-04). A
   * snapshot outlives the classes like an event does: these must keep decoding to the same state.
   */
  private static final String GOLDEN_ENDED =
      "08021a0953554343454544454421c286a757ca32ec3f2a066431673373743ab9040a530a1166617368696f6e2d6d6e697374" +
      "2d6d6c70100218032080012a1e0a0373676415cdcccc3d1d6666663f256666663f2d77be7f3f3577cc2b32300738f403420c" +
      "6d6f64656c2e706172616d734864500158031003180222156d656d6f72793a6a6f622d312d776f726b65722d302a3c0a3708" +
      "0111000000000000e03f199a9999999999e93f21ec51b81e85ebe93f29000000000088e34031000000000000f83f38024080" +
      "d403480110d4032a3a0a350802119a9999999999d93f19333333333333eb3f218fc2f5285c8fea3f29000000000005e44031" +
      "666666666666f63f38034080d40310a80730a8073a5808a006120b737465702d3830302d616218f8b3352240656665666566" +
      "6566656665666566656665666566656665666566656665666566656665666566656665666566656665666566656665666566" +
      "656665666566656628013a58088407120b737465702d3930302d636418f9b335224030313031303130313031303130313031" +
      "3031303130313031303130313031303130313031303130313031303130313031303130313031303130313031303130312801" +
      "40014803520200025804622508011003220d6a6f62207375626d69747465642a04696e697432030001023880d0dfb4ab3362" +
      "3908021002188407220d72616e6b2031206661696c65642a16636865636b706f696e743a737465702d3930302d6364320200" +
      "0238e0a4e3b4ab33622a0803100218a80722067363616c65642a156d656d6f72793a6a6f622d312d776f726b65722d303202" +
      "0002";

  @Test
  void snapshotBytesOfTheFirstFormatStillDecodeToTheSameState() throws Exception {
    // It has no times: the submission's and start's come from its first generation, the end's is not known.
    assertEquals(new JobState.Ended(course(), JobStatus.Phase.SUCCEEDED, 0.8812, "d1g3st", "", 0),
        SERIALIZER.fromBinary(java.util.HexFormat.of().parseHex(GOLDEN_ENDED), JobStateSerializer.STATE));
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
