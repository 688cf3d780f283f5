package kaon.actors.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.protocol.NamedTensor;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** The checkpoint store against the real Cassandra node the build starts. */
class CheckpointStoreTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  /** Small chunks, so that a test-sized checkpoint spans many of them. */
  private static final CheckpointSettings SETTINGS =
      new CheckpointSettings("kaon_test", true, 1, 64 * 1024, 4, 3, Duration.ofMillis(100), Duration.ofSeconds(1));
  private static final CheckpointStore store = CheckpointStore.create(testKit.system(), SETTINGS);

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private static <T> T await(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static CheckpointData checkpoint(String jobId, long step, int floats) {
    SplittableRandom random = new SplittableRandom(step);
    float[] weights = new float[floats];
    for (int i = 0; i < floats; i++) {
      weights[i] = (float) random.nextGaussian();
    }
    weights[0] = Float.NaN;
    weights[1] = -0.0f;
    return new CheckpointData(jobId, step, (int) (step / 468), (int) (step % 468), 42, 2,
        List.of(new NamedTensor("01Linear_weight", new long[] {floats}, weights),
            new NamedTensor("01Linear_bias", new long[] {2}, new float[] {1.5f, -2.5f})),
        List.of(new NamedTensor("optimizer/steps", new long[] {4}, new float[] {0, 0, 0, step}),
            new NamedTensor("01Linear_weight/momentum", new long[] {3}, new float[] {0.1f, 0.2f, 0.3f})),
        123.25, 77, new kaon.actors.data.SampleLedger(640, 191_234, 1_300_007));
  }

  private static String job() {
    return "ckpt-" + UUID.randomUUID();
  }

  private static CqlSession session() throws Exception {
    return await(CassandraSessionRegistry.get(testKit.system())
        .sessionFor(org.apache.pekko.stream.connectors.cassandra.CassandraSessionSettings.create()).underlying());
  }

  @Test
  void aCheckpointRoundTripsExactlyThroughManyChunks() throws Exception {
    String job = job();
    CheckpointData written = checkpoint(job, 936, 300_000);
    CheckpointInfo info = await(store.write(written));
    assertEquals(936, info.step());
    assertTrue(info.bytes() > 1_200_000, "payload " + info.bytes());
    CheckpointData read = await(store.load(job, info.id()));
    assertEquals(written.step(), read.step());
    assertEquals(written.epoch(), read.epoch());
    assertEquals(written.stepInEpoch(), read.stepInEpoch());
    assertEquals(written.seed(), read.seed());
    assertEquals(written.epochLossSum(), read.epochLossSum());
    assertEquals(written.epochCorrect(), read.epochCorrect());
    assertEquals(written.epochLedger(), read.epochLedger());
    // NamedTensor compares values bit for bit (NaN and -0.0 included).
    assertEquals(written.parameters(), read.parameters());
    assertEquals(written.optimizerState(), read.optimizerState());
  }

  @Test
  void listsNewestFirstAndDeletesOlderOnes() throws Exception {
    String job = job();
    for (long step : new long[] {100, 300, 200}) {
      await(store.write(checkpoint(job, step, 1000)));
    }
    List<CheckpointInfo> all = await(store.list(job));
    assertEquals(List.of(300L, 200L, 100L), all.stream().map(CheckpointInfo::step).toList());
    assertEquals(1, await(store.deleteOlderThan(job, 200, java.util.Set.of())));
    assertEquals(List.of(300L, 200L), await(store.list(job)).stream().map(CheckpointInfo::step).toList());
    // A checkpoint its journal keeps stays, though older than the step given (a generation that
    // resumed from an earlier step commits lower steps after higher ones).
    CheckpointInfo kept = all.get(1);
    assertEquals(0, await(store.deleteOlderThan(job, 300, java.util.Set.of(kept.id()))));
    assertEquals(List.of(300L, 200L), await(store.list(job)).stream().map(CheckpointInfo::step).toList());
    CheckpointInfo gone = all.get(2);
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(store.load(job, gone.id())));
    assertInstanceOf(CheckpointDamagedException.class, e.getCause());
  }

  @Test
  void aCheckpointWithoutItsMetadataRowIsNeverListed() throws Exception {
    // What a crash between the chunk writes and the commit row leaves behind.
    String job = job();
    session().execute("INSERT INTO kaon_test.checkpoint_chunks (job_id, checkpoint_id, chunk, data) VALUES ('"
        + job + "', 'step-50-halfdone', 0, 0xcafe)");
    assertEquals(List.of(), await(store.list(job)));
  }

  @Test
  void aDamagedChunkFailsTheChecksumAndIsNotLoaded() throws Exception {
    String job = job();
    CheckpointInfo info = await(store.write(checkpoint(job, 468, 100_000)));
    ByteBuffer garbage = ByteBuffer.wrap(new byte[] {1, 2, 3, 4});
    session().execute(com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(
        "UPDATE kaon_test.checkpoint_chunks SET data = ? WHERE job_id = ? AND checkpoint_id = ? AND chunk = 2",
        garbage, job, info.id()));
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(store.load(job, info.id())));
    assertInstanceOf(CheckpointDamagedException.class, e.getCause());
    assertTrue(e.getCause().getMessage().contains("incomplete") || e.getCause().getMessage().contains("checksum"),
        e.getCause().getMessage());
  }

  @Test
  void aMissingChunkIsReportedAsIncomplete() throws Exception {
    String job = job();
    CheckpointInfo info = await(store.write(checkpoint(job, 10, 100_000)));
    session().execute("DELETE FROM kaon_test.checkpoint_chunks WHERE job_id = '" + job + "' AND checkpoint_id = '"
        + info.id() + "' AND chunk = 1");
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(store.load(job, info.id())));
    assertInstanceOf(CheckpointDamagedException.class, e.getCause());
    assertTrue(e.getCause().getMessage().contains("chunk 1 of"), e.getCause().getMessage());
  }

  @Test
  void aModelIsStoredInChunksAndReadBackChunkByChunk() throws Exception {
    String job = job();
    byte[] model = new byte[200_000];
    new SplittableRandom(7).nextBytes(model);
    String sha = CheckpointStore.checksum(model);
    CheckpointStore.StoredModel stored = await(store.writeModel(job, model, sha));
    assertEquals(new CheckpointStore.StoredModel(job, sha, 200_000, 4), stored);
    assertEquals(java.util.Optional.of(stored), await(store.findModel(job, sha)));
    java.io.ByteArrayOutputStream read = new java.io.ByteArrayOutputStream();
    for (int c = 0; c < stored.chunks(); c++) {
      ByteBuffer chunk = await(store.readModelChunk(stored, c));
      byte[] bytes = new byte[chunk.remaining()];
      chunk.get(bytes);
      read.write(bytes);
    }
    assertArrayEquals(model, read.toByteArray());
  }

  @Test
  void aModelIsFoundOnlyUnderItsJobAndSha256() throws Exception {
    String job = job();
    byte[] model = {1, 2, 3};
    await(store.writeModel(job, model, CheckpointStore.checksum(model)));
    assertEquals(java.util.Optional.empty(), await(store.findModel(job, CheckpointStore.checksum(new byte[] {4}))));
    assertEquals(java.util.Optional.empty(), await(store.findModel(job(), CheckpointStore.checksum(model))));
  }
}
