package kaon.actors.job;

import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.NotSerializableException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import kaon.actors.training.OptimizerSpec;
import org.junit.jupiter.api.Test;

/**
 * The journal format. The golden bytes below were written by this serializer when the format was
 * made; they must keep decoding to the same events forever. If one of these tests fails, the
 * change broke every journal in the field: add a field instead of changing one.
 */
class JobEventSerializerTest {

  private final JobEventSerializer serializer = new JobEventSerializer(null);

  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 10, 128,
      new OptimizerSpec(OptimizerSpec.Kind.ADAMW, 0.001f, 0f, 0.9f, 0.999f, 1e-8f, 0.01f), 42, 0, "/tmp/m.params", 200);

  /** Each event with the manifest and bytes it was first stored with. */
  private static Map<Object, String[]> golden() {
    Map<Object, String[]> g = new LinkedHashMap<>();
    g.put(new JobEvent.JobSubmitted(SPEC, 1_764_000_000_000L), new String[] {"JS", GOLDEN_SUBMITTED});
    // Written before workers had member ids and times: its members read as ranks 0..1, its time as 0.
    g.put(new JobEvent.GenerationStarted(3, 2, 400, "coordinator recovered", new StateSource.Checkpoint("step-400-abcd"), List.of(0, 1), 0),
        new String[] {"GS", GOLDEN_GENERATION});
    g.put(new JobEvent.EpochCompleted(new EpochMetrics(1, 0.5893, 0.7925, 0.8123, 41234.5, 1.45, 2, 468, 0, false), 468),
        new String[] {"EC", GOLDEN_EPOCH});
    g.put(new JobEvent.CheckpointCommitted(new CheckpointInfo("step-400-abcd", 400, 0, 1_312_345, "ab".repeat(32))),
        new String[] {"CC", GOLDEN_CHECKPOINT});
    // Written before the ends of a job said when: their time reads as 0 (not known).
    g.put(new JobEvent.JobSucceeded(0.8695, "cd".repeat(32), 0), new String[] {"OK", GOLDEN_SUCCEEDED});
    g.put(new JobEvent.JobFailed("rank 1 failed: all-reduce missed its deadline", 0), new String[] {"JF", GOLDEN_FAILED});
    g.put(new JobEvent.JobCancelled(0), new String[] {"JC", ""});
    g.put(new JobEvent.JobSucceeded(0.8695, "cd".repeat(32), 1_764_000_100_000L), new String[] {"OK", GOLDEN_SUCCEEDED_AT});
    g.put(new JobEvent.JobFailed("rank 1 failed: all-reduce missed its deadline", 1_764_000_200_000L),
        new String[] {"JF", GOLDEN_FAILED_AT});
    g.put(new JobEvent.JobCancelled(1_764_000_300_000L), new String[] {"JC", GOLDEN_CANCELLED_AT});
    return g;
  }

  @Test
  void goldenBytesStillDecodeToTheSameEvents() throws NotSerializableException {
    for (Map.Entry<Object, String[]> e : golden().entrySet()) {
      String manifest = e.getValue()[0];
      byte[] bytes = HexFormat.of().parseHex(e.getValue()[1]);
      assertEquals(e.getKey(), serializer.fromBinary(bytes, manifest), manifest);
    }
  }

  @Test
  void everyEventRoundTripsWithItsManifest() throws NotSerializableException {
    // Encoding may grow (new fields), so bytes are compared only one way: old bytes must decode.
    for (Map.Entry<Object, String[]> e : golden().entrySet()) {
      String manifest = serializer.manifest(e.getKey());
      assertEquals(e.getValue()[0], manifest);
      assertEquals(e.getKey(), serializer.fromBinary(serializer.toBinary(e.getKey()), manifest));
    }
    JobEvent.EpochCompleted ledgered =
        new JobEvent.EpochCompleted(new EpochMetrics(2, 0.41, 0.85, 0.84, 40000, 1.5, 3, 936, 59_904, true), 936);
    assertEquals(ledgered, serializer.fromBinary(serializer.toBinary(ledgered), serializer.manifest(ledgered)));
    JobEvent.GenerationStarted members = new JobEvent.GenerationStarted(
        5, 3, 1234, "rank 1 failed: all-reduce missed its deadline", new StateSource.Memory("job-1-worker-2"), List.of(2, 0, 3), 1_764_000_123_456L);
    assertEquals(members, serializer.fromBinary(serializer.toBinary(members), serializer.manifest(members)));
    JobEvent.JobScaled scaled = new JobEvent.JobScaled(1, 3);
    assertEquals(scaled, serializer.fromBinary(serializer.toBinary(scaled), serializer.manifest(scaled)));
  }

  @Test
  void specsWrittenBeforeWorkerBoundsReadAsFixedSize() throws NotSerializableException {
    // GOLDEN_SUBMITTED predates min/max workers: both read as its worker count.
    JobEvent.JobSubmitted old = (JobEvent.JobSubmitted)
        serializer.fromBinary(HexFormat.of().parseHex(GOLDEN_SUBMITTED), "JS");
    assertEquals(2, old.spec().minWorkers());
    assertEquals(2, old.spec().maxWorkers());
  }

  @Test
  void anUnknownManifestIsRefusedClearly() {
    NotSerializableException e = assertThrows(NotSerializableException.class, () -> serializer.fromBinary(new byte[0], "XX"));
    assertEquals("unknown job event manifest 'XX'", e.getMessage());
  }

  @Test
  void garbageBytesAreRefusedClearly() {
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(new byte[] {(byte) 0xff, 1, 2}, "JS"));
  }

  // Written by the serializer on 2026-11-26. Never edit these.
  static final String GOLDEN_SUBMITTED =
      "0a500a1166617368696f6e2d6d6e6973742d6d6c701002180a2080012a200a056164616d77156f12833a256666663f2d77be7f3f3577cc2b323d0ad7233c302a420d2f746d702f6d2e706172616d7348c8011080d0dfb4ab33";
  static final String GOLDEN_GENERATION =
      "080310021890032215636f6f7264696e61746f72207265636f76657265642a18636865636b706f696e743a737465702d3430302d61626364";
  static final String GOLDEN_EPOCH =
      "0a31080111b30c71ac8bdbe23f195c8fc2f5285ce93f213c4ed1915cfee93f29000000005022e44031333333333333f73f380210d403";
  static final String GOLDEN_CHECKPOINT =
      "089003120d737465702d3430302d6162636418d98c50224061626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162";
  static final String GOLDEN_SUCCEEDED =
      "096de7fba9f1d2eb3f124063646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364";
  static final String GOLDEN_FAILED =
      "0a2d72616e6b2031206661696c65643a20616c6c2d726564756365206d69737365642069747320646561646c696e65";

  // The ends of a job with their time, written by the serializer on 2026-12-05. Never edit these.
  static final String GOLDEN_SUCCEEDED_AT =
      "096de7fba9f1d2eb3f12406364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636418a0dde5b4ab33";
  static final String GOLDEN_FAILED_AT =
      "0a2d72616e6b2031206661696c65643a20616c6c2d726564756365206d69737365642069747320646561646c696e6510c0eaebb4ab33";
  static final String GOLDEN_CANCELLED_AT = "08e0f7f1b4ab33";
}
