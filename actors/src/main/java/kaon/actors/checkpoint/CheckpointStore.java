package kaon.actors.checkpoint;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.metrics.KaonMetrics;
import kaon.protocol.NamedTensor;
import kaon.protocol.v1.Checkpoint;
import kaon.protocol.v1.Tensor;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.stream.connectors.cassandra.CassandraSessionSettings;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSession;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;

/**
 * Checkpoints and the trained models of jobs in Cassandra, through the same driver configuration
 * as the job journal.
 *
 * <p>A checkpoint is one protobuf {@code Checkpoint} payload cut into chunk rows of at most
 * {@code chunk-bytes}, each its own partition (a 100 MB model must not become one huge
 * partition), plus one metadata row with the chunk count and the payload's SHA-256. The metadata
 * row is written last, after every chunk write was acknowledged: it is the commit point, so a
 * checkpoint interrupted half-way is never listed, and one whose bytes are damaged fails its
 * checksum and is never loaded. The job's journal records a checkpoint ({@code
 * CheckpointCommitted}) only after {@link #write} completed.
 *
 * <p>A job's trained model (the DJL {@code .params} file rank 0 delivers) is stored the same way:
 * chunk rows, then one metadata row, keyed by the job and the file's SHA-256, which is the digest
 * the job reports when it succeeds. Rank 0 reports its last step only once its model is stored,
 * so a succeeded job's model can be read from any node, chunk by chunk, also when rank 0's node
 * is gone. Models are kept until an operator deletes them; a job stores one (two only when it
 * finished twice with different parameters, which its digest then tells apart).
 *
 * <p>Encoding, hashing and decoding run on Pekko's blocking-IO dispatcher, never on the caller's
 * thread: the training thread must not wait for a checkpoint.
 */
public final class CheckpointStore {

  private final CassandraSession session;
  private final CheckpointSettings settings;
  private final Executor executor;
  private final KaonMetrics metrics;
  private volatile Statements statements;

  /** The prepared statements, made once per session. */
  private record Statements(
      PreparedStatement insertChunk,
      PreparedStatement insertMeta,
      PreparedStatement selectMeta,
      PreparedStatement selectOneMeta,
      PreparedStatement selectChunk,
      PreparedStatement deleteMeta,
      PreparedStatement deleteChunk,
      PreparedStatement insertModelChunk,
      PreparedStatement insertModelMeta,
      PreparedStatement selectModelMeta,
      PreparedStatement selectModelChunk) {}

  /**
   * A job's model as stored: {@code bytes} long in {@code chunks} chunks, the file's sha256 (hex)
   * its key.
   */
  public record StoredModel(String jobId, String sha256, long bytes, int chunks) {}

  private CheckpointStore(CassandraSession session, CheckpointSettings settings, Executor executor, KaonMetrics metrics) {
    this.metrics = metrics;
    this.session = session;
    this.settings = settings;
    this.executor = executor;
  }

  /**
   * A store on its own session with the journal's driver configuration ({@code
   * datastax-java-driver}). Not the journal's session itself: the registry runs the schema set-up
   * of whoever asks for a session first, and the journal's must be the journal plugin's.
   */
  public static CheckpointStore create(ActorSystem<?> system, CheckpointSettings settings) {
    CassandraSession session = CassandraSessionRegistry.get(system).sessionFor(CassandraSessionSettings.create());
    Executor executor = system.dispatchers().lookup(DispatcherSelector.blocking());
    return new CheckpointStore(session, settings, executor, KaonMetrics.get(system));
  }

  /** Completes once a trivial query has gone through this store's session: it is open and Cassandra answers. */
  public CompletionStage<Void> ping() {
    return session.underlying()
        .thenCompose(s -> s.executeAsync(SimpleStatement.newInstance("SELECT release_version FROM system.local")))
        .thenApply(rows -> null);
  }

  /** The settings this store was made with. */
  public CheckpointSettings settings() {
    return settings;
  }

  /**
   * Writes {@code data} and completes with its info once every row is durable; fails (and leaves
   * no listed checkpoint) if any write fails.
   */
  public CompletionStage<CheckpointInfo> write(CheckpointData data) {
    String id = "step-" + data.step() + "-" + UUID.randomUUID().toString().substring(0, 8);
    long start = System.nanoTime();
    CompletableFuture<byte[]> encoded = CompletableFuture.supplyAsync(() -> encode(data).toByteArray(), executor);
    return prepared().thenCompose(st -> encoded.thenCompose(payload -> {
      int chunks = Math.max(1, (payload.length + settings.chunkBytes() - 1) / settings.chunkBytes());
      String sha = sha256(payload);
      return writeChunks(st.insertChunk, data.jobId(), id, payload, chunks)
          .thenCompose(done -> execute(st.insertMeta.bind(
              data.jobId(), data.step(), id, data.epoch(), (long) payload.length, chunks,
              settings.chunkBytes(), sha, Instant.now())))
          .thenApply(rs -> {
            metrics.checkpoint("write", payload.length, System.nanoTime() - start);
            return new CheckpointInfo(id, data.step(), data.epoch(), payload.length, sha);
          });
    }));
  }

  /**
   * Reads checkpoint {@code id} of {@code jobId}, verified.
   *
   * @return fails with {@link CheckpointDamagedException} if it is missing, incomplete or fails
   *     its checksum
   */
  public CompletionStage<CheckpointData> load(String jobId, String id) {
    long start = System.nanoTime();
    return prepared().thenCompose(st -> execute(st.selectOneMeta.bind(jobId, id))
        .thenCompose(rs -> {
          Row meta = rs.one();
          if (meta == null) {
            throw new CheckpointDamagedException("checkpoint " + id + " of job " + jobId + " does not exist");
          }
          int chunks = meta.getInt("chunks");
          long bytes = meta.getLong("bytes");
          String sha = meta.getString("sha256");
          return readChunks(st, jobId, id, chunks).thenApplyAsync(parts -> {
            CheckpointData data = decode(jobId, id, parts, bytes, sha);
            metrics.checkpoint("read", bytes, System.nanoTime() - start);
            return data;
          }, executor);
        }));
  }

  /**
   * Stores {@code model}, the trained parameters of {@code jobId} whose sha256 (hex) is {@code
   * sha256}; completes once every row is durable. Storing the same model again is harmless.
   */
  public CompletionStage<StoredModel> writeModel(String jobId, byte[] model, String sha256) {
    int chunks = Math.max(1, (model.length + settings.chunkBytes() - 1) / settings.chunkBytes());
    return prepared().thenCompose(st -> writeChunks(st.insertModelChunk, jobId, sha256, model, chunks)
        .thenCompose(done -> execute(st.insertModelMeta.bind(
            jobId, sha256, (long) model.length, chunks, settings.chunkBytes(), Instant.now()))))
        .thenApply(rs -> new StoredModel(jobId, sha256, model.length, chunks));
  }

  /** The model of {@code jobId} whose sha256 (hex) is {@code sha256}, if it was stored completely. */
  public CompletionStage<Optional<StoredModel>> findModel(String jobId, String sha256) {
    return prepared().thenCompose(st -> execute(st.selectModelMeta.bind(jobId, sha256)))
        .thenApply(rs -> Optional.ofNullable(rs.one())
            .map(row -> new StoredModel(jobId, sha256, row.getLong("bytes"), row.getInt("chunks"))));
  }

  /**
   * Chunk {@code chunk} of a stored model. Read one at a time, a model of any size is never held
   * whole in memory.
   *
   * @return fails with {@link CheckpointDamagedException} when the chunk is missing
   */
  public CompletionStage<ByteBuffer> readModelChunk(StoredModel model, int chunk) {
    return prepared().thenCompose(st -> execute(st.selectModelChunk.bind(model.jobId(), model.sha256(), chunk)))
        .thenApply(rs -> {
          Row row = rs.one();
          if (row == null) {
            throw new CheckpointDamagedException("the model of job " + model.jobId() + " is incomplete: chunk " + chunk
                + " of " + model.chunks() + " is missing");
          }
          return row.getByteBuffer("data");
        });
  }

  /** Checkpoints listed for {@code jobId}, newest first. */
  public CompletionStage<List<CheckpointInfo>> list(String jobId) {
    return prepared().thenCompose(st -> execute(st.selectMeta.bind(jobId))).thenCompose(rs -> collect(rs, new ArrayList<>()));
  }

  /**
   * Deletes every checkpoint of {@code jobId} older than {@code keepFromStep}, except those in
   * {@code keep} (checkpoints its journal still names).
   */
  public CompletionStage<Integer> deleteOlderThan(String jobId, long keepFromStep, java.util.Set<String> keep) {
    return list(jobId).thenCompose(all -> {
      CompletableFuture<Integer> chain = CompletableFuture.completedFuture(0);
      for (CheckpointInfo info : all) {
        if (info.step() < keepFromStep && !keep.contains(info.id())) {
          chain = chain.thenCompose(n -> delete(jobId, info).thenApply(x -> n + 1));
        }
      }
      return chain;
    });
  }

  /** Deletes one checkpoint: the metadata row first, so it stops being listed before its chunks go. */
  public CompletionStage<Void> delete(String jobId, CheckpointInfo info) {
    return prepared().thenCompose(st -> execute(st.deleteMeta.bind(jobId, info.step(), info.id()))
        .thenCompose(rs -> {
          int chunks = (int) Math.max(1, (info.bytes() + settings.chunkBytes() - 1) / settings.chunkBytes());
          List<CompletableFuture<AsyncResultSet>> deletes = new ArrayList<>();
          for (int c = 0; c < chunks; c++) {
            deletes.add(execute(st.deleteChunk.bind(jobId, info.id(), c)).toCompletableFuture());
          }
          return CompletableFuture.allOf(deletes.toArray(CompletableFuture[]::new));
        }));
  }

  // ------------------------------------------------------------------ writing and reading rows

  private CompletionStage<Void> writeChunks(PreparedStatement insert, String jobId, String id, byte[] payload, int chunks) {
    // A few lanes, each writing its chunks one after another: bounded parallelism without a
    // second buffer of the payload.
    int lanes = Math.min(settings.writeParallelism(), chunks);
    List<CompletableFuture<Void>> all = new ArrayList<>(lanes);
    for (int lane = 0; lane < lanes; lane++) {
      CompletableFuture<Void> chain = CompletableFuture.completedFuture(null);
      for (int c = lane; c < chunks; c += lanes) {
        int chunk = c;
        chain = chain.thenCompose(x -> {
          int from = chunk * settings.chunkBytes();
          int to = Math.min(payload.length, from + settings.chunkBytes());
          ByteBuffer slice = ByteBuffer.wrap(payload, from, to - from).slice();
          return execute(insert.bind(jobId, id, chunk, slice)).thenApply(rs -> (Void) null);
        });
      }
      all.add(chain);
    }
    return CompletableFuture.allOf(all.toArray(CompletableFuture[]::new));
  }

  private CompletionStage<List<ByteBuffer>> readChunks(Statements st, String jobId, String id, int chunks) {
    List<CompletableFuture<ByteBuffer>> reads = new ArrayList<>(chunks);
    for (int c = 0; c < chunks; c++) {
      int chunk = c;
      reads.add(execute(st.selectChunk.bind(jobId, id, chunk)).thenApply(rs -> {
        Row row = rs.one();
        if (row == null) {
          throw new CheckpointDamagedException(
              "checkpoint " + id + " of job " + jobId + " is incomplete: chunk " + chunk + " of " + chunks + " is missing");
        }
        return row.getByteBuffer("data");
      }).toCompletableFuture());
    }
    return CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new))
        .thenApply(x -> reads.stream().map(CompletableFuture::join).toList());
  }

  private CompletionStage<List<CheckpointInfo>> collect(AsyncResultSet rs, List<CheckpointInfo> out) {
    for (Row row : rs.currentPage()) {
      out.add(new CheckpointInfo(row.getString("checkpoint_id"), row.getLong("step"), row.getInt("epoch"),
          row.getLong("bytes"), row.getString("sha256")));
    }
    return rs.hasMorePages() ? rs.fetchNextPage().thenCompose(next -> collect(next, out)) : CompletableFuture.completedFuture(out);
  }

  private CompletionStage<AsyncResultSet> execute(com.datastax.oss.driver.api.core.cql.Statement<?> statement) {
    return session.underlying().thenCompose(s -> s.executeAsync(statement.setConsistencyLevel(ConsistencyLevel.LOCAL_QUORUM)));
  }

  private CompletionStage<Statements> prepared() {
    Statements ready = statements;
    if (ready != null) {
      return CompletableFuture.completedFuture(ready);
    }
    return session.underlying().thenCompose(this::prepare);
  }

  /** Runs {@code statements} one after another (DDL: each waits for schema agreement). */
  private static CompletionStage<?> inTurn(CqlSession s, List<String> statements) {
    CompletionStage<?> chain = CompletableFuture.completedFuture(null);
    for (String statement : statements) {
      chain = chain.thenCompose(r -> s.executeAsync(SimpleStatement.newInstance(statement)));
    }
    return chain;
  }

  private CompletionStage<Statements> prepare(CqlSession s) {
    String ks = settings.keyspace();
    CompletionStage<?> schema = settings.autocreate()
        ? s.executeAsync("CREATE KEYSPACE IF NOT EXISTS " + ks + " WITH replication = "
                + "{'class': 'SimpleStrategy', 'replication_factor': " + settings.replicationFactor() + "}")
            .thenCompose(r -> inTurn(s, CheckpointSchema.tables(ks)))
        : CompletableFuture.completedFuture(null);
    return schema.thenCompose(x -> {
      CompletableFuture<PreparedStatement> insertChunk = s.prepareAsync(
          "INSERT INTO " + ks + ".checkpoint_chunks (job_id, checkpoint_id, chunk, data) VALUES (?, ?, ?, ?)").toCompletableFuture();
      CompletableFuture<PreparedStatement> insertMeta = s.prepareAsync(
          "INSERT INTO " + ks + ".checkpoints (job_id, step, checkpoint_id, epoch, bytes, chunks, chunk_bytes, sha256, created_at) "
              + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").toCompletableFuture();
      CompletableFuture<PreparedStatement> selectMeta = s.prepareAsync(
          "SELECT checkpoint_id, step, epoch, bytes, sha256 FROM " + ks + ".checkpoints WHERE job_id = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> selectOneMeta = s.prepareAsync(
          "SELECT chunks, bytes, sha256 FROM " + ks + ".checkpoints WHERE job_id = ? AND checkpoint_id = ? ALLOW FILTERING")
          .toCompletableFuture();
      CompletableFuture<PreparedStatement> selectChunk = s.prepareAsync(
          "SELECT data FROM " + ks + ".checkpoint_chunks WHERE job_id = ? AND checkpoint_id = ? AND chunk = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> deleteMeta = s.prepareAsync(
          "DELETE FROM " + ks + ".checkpoints WHERE job_id = ? AND step = ? AND checkpoint_id = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> deleteChunk = s.prepareAsync(
          "DELETE FROM " + ks + ".checkpoint_chunks WHERE job_id = ? AND checkpoint_id = ? AND chunk = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> insertModelChunk = s.prepareAsync(
          "INSERT INTO " + ks + ".model_chunks (job_id, sha256, chunk, data) VALUES (?, ?, ?, ?)").toCompletableFuture();
      CompletableFuture<PreparedStatement> insertModelMeta = s.prepareAsync(
          "INSERT INTO " + ks + ".models (job_id, sha256, bytes, chunks, chunk_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)")
          .toCompletableFuture();
      CompletableFuture<PreparedStatement> selectModelMeta = s.prepareAsync(
          "SELECT bytes, chunks FROM " + ks + ".models WHERE job_id = ? AND sha256 = ?").toCompletableFuture();
      CompletableFuture<PreparedStatement> selectModelChunk = s.prepareAsync(
          "SELECT data FROM " + ks + ".model_chunks WHERE job_id = ? AND sha256 = ? AND chunk = ?").toCompletableFuture();
      return CompletableFuture.allOf(insertChunk, insertMeta, selectMeta, selectOneMeta, selectChunk, deleteMeta, deleteChunk,
              insertModelChunk, insertModelMeta, selectModelMeta, selectModelChunk)
          .thenApply(y -> {
            Statements made = new Statements(insertChunk.join(), insertMeta.join(), selectMeta.join(), selectOneMeta.join(),
                selectChunk.join(), deleteMeta.join(), deleteChunk.join(), insertModelChunk.join(), insertModelMeta.join(),
                selectModelMeta.join(), selectModelChunk.join());
            statements = made;
            return made;
          });
    });
  }

  // ------------------------------------------------------------------ payload

  /**
   * The checkpoint payload of {@code data}, as written to Cassandra. A rank that hands its state
   * to another one in memory uses the same encoding.
   */
  public static byte[] toBytes(CheckpointData data) {
    return encode(data).toByteArray();
  }

  /** Decodes a payload of {@link #toBytes}, checking it against its sha256 (hex). */
  public static CheckpointData fromBytes(String jobId, String source, byte[] payload, String sha) {
    return decode(jobId, source, List.of(ByteBuffer.wrap(payload)), payload.length, sha);
  }

  /** The sha256 (hex) a payload of {@link #toBytes} is checked against. */
  public static String checksum(byte[] payload) {
    return sha256(payload);
  }

  static Checkpoint encode(CheckpointData data) {
    Checkpoint.Builder b = Checkpoint.newBuilder()
        .setJobId(data.jobId())
        .setStep(data.step())
        .setEpoch(data.epoch())
        .setStepInEpoch(data.stepInEpoch())
        .setSeed(data.seed())
        .setWorldSize(data.worldSize())
        .setEpochLossSum(data.epochLossSum())
        .setEpochCorrect(data.epochCorrect())
        .setEpochExamples(data.epochLedger().samples())
        .setEpochIndexSum(data.epochLedger().indexSum())
        .setEpochIndexHash(data.epochLedger().indexHash());
    data.parameters().forEach(t -> b.addParameters(tensor(t)));
    data.optimizerState().forEach(t -> b.addOptimizerState(tensor(t)));
    return b.build();
  }

  private static Tensor tensor(NamedTensor t) {
    ByteBuffer bytes = ByteBuffer.allocate(t.values().length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(t.values());
    Tensor.Builder b = Tensor.newBuilder().setName(t.name()).setData(ByteString.copyFrom(bytes.array()));
    for (long d : t.shape()) {
      b.addShape(d);
    }
    return b.build();
  }

  private static NamedTensor tensor(Tensor t) {
    long[] shape = t.getShapeList().stream().mapToLong(Long::longValue).toArray();
    float[] values = new float[t.getData().size() / Float.BYTES];
    t.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
    return new NamedTensor(t.getName(), shape, values);
  }

  static CheckpointData decode(String jobId, String id, List<ByteBuffer> parts, long bytes, String sha) {
    byte[] payload = new byte[(int) bytes];
    int at = 0;
    for (ByteBuffer part : parts) {
      int n = part.remaining();
      if (at + n > payload.length) {
        throw new CheckpointDamagedException("checkpoint " + id + " of job " + jobId + " has more bytes than its metadata says");
      }
      part.get(payload, at, n);
      at += n;
    }
    if (at != payload.length) {
      throw new CheckpointDamagedException(
          "checkpoint " + id + " of job " + jobId + " is incomplete: " + at + " of " + bytes + " bytes");
    }
    String actual = sha256(payload);
    if (!actual.equals(sha)) {
      throw new CheckpointDamagedException(
          "checkpoint " + id + " of job " + jobId + " fails its checksum (sha256 " + actual + ", expected " + sha + ")");
    }
    try {
      Checkpoint c = Checkpoint.parseFrom(payload);
      return new CheckpointData(c.getJobId(), c.getStep(), c.getEpoch(), c.getStepInEpoch(), c.getSeed(), c.getWorldSize(),
          c.getParametersList().stream().map(CheckpointStore::tensor).toList(),
          c.getOptimizerStateList().stream().map(CheckpointStore::tensor).toList(),
          c.getEpochLossSum(), c.getEpochCorrect(),
          new kaon.actors.data.SampleLedger(c.getEpochExamples(), c.getEpochIndexSum(), c.getEpochIndexHash()));
    } catch (InvalidProtocolBufferException e) {
      throw new CheckpointDamagedException("checkpoint " + id + " of job " + jobId + " does not decode: " + e.getMessage());
    }
  }

  static String sha256(byte[] payload) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(payload));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every JVM", e);
    }
  }

  /** The innermost message of {@code error}: what a job's health and the logs should say of a failed write. */
  public static String rootMessage(Throwable error) {
    Throwable t = error;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t.getMessage() == null ? t.toString() : t.getMessage();
  }
}
