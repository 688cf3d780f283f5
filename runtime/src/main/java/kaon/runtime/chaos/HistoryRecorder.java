package kaon.runtime.chaos;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.Progress;
import kaon.runtime.chaos.Observation.CheckpointCommitted;
import kaon.runtime.chaos.Observation.CheckpointVerified;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.RanksPlaced;
import kaon.runtime.chaos.Observation.StepsSeen;

/**
 * Turns what a run sees of its jobs into a history: each {@code GetJob} answer it is given
 * (generations, steps, health, epochs, ranks, the end), the checkpoint table (every committed
 * checkpoint, and the bytes of each one a generation loaded, hashed) and, after the run, each job's
 * journal. Calls to Cassandra that fail (it may be the fault) are retried on the next look; what
 * could never be read is recorded as such, for the checker to refuse.
 *
 * <p>Its methods are synchronized: a run records faults on its own thread while a sampler
 * records what it sees on another.
 */
public final class HistoryRecorder implements AutoCloseable {

  /** Where the store's tables are. */
  public record Store(String host, int port, String checkpointKeyspace, String journalKeyspace) {}

  // Steps are recorded when something changes, and at least this often, so the history shows a job
  // still looked at (and stuck) rather than a silence that could be the recorder's.
  private static final long HEARTBEAT_MILLIS = 10_000;

  private final HistoryFile file;
  private final Store store;
  private final LongSupplier clock;
  private final Map<String, Seen> jobs = new HashMap<>();
  private CqlSession cql;

  /** What has been recorded of one job, so that only news is. */
  private static final class Seen {
    final Set<Long> generations = new HashSet<>();
    final Set<String> checkpoints = new HashSet<>();
    final Set<String> toVerify = new HashSet<>();
    final Map<String, String> verified = new HashMap<>();
    final long maxSteps;
    int epochs;
    int stepsPerEpoch;
    StepsSeen lastSteps;
    List<RanksPlaced.Rank> ranks = List.of();
    boolean ended;

    Seen(long maxSteps) {
      this.maxSteps = maxSteps;
    }
  }

  public HistoryRecorder(HistoryFile file, Store store, LongSupplier clock) {
    this.file = file;
    this.store = store;
    this.clock = clock;
  }

  /** Records any observation the run makes itself (submissions, faults, baselines, the cluster). */
  public synchronized void record(Observation o) {
    if (o instanceof Observation.JobSubmitted s) {
      jobs.putIfAbsent(s.jobId(), new Seen(s.maxSteps()));
    }
    file.record(o);
  }

  /** Records the news in a job's status as {@code GetJob} gave it. */
  public synchronized void observe(Job job) {
    Seen seen = jobs.get(job.getJobId());
    if (seen == null || seen.ended) {
      return;
    }
    long now = clock.getAsLong();
    String id = job.getJobId();
    for (Generation g : job.getGenerationsList()) {
      if (seen.generations.add(g.getGeneration())) {
        file.record(new GenerationFormed(g.getAtMillis() > 0 ? g.getAtMillis() : now, id, g.getGeneration(),
            g.getWorldSize(), g.getResumeStep(), g.getStateSource(), g.getReason(), List.copyOf(g.getWorkersList())));
        if (g.getStateSource().startsWith("checkpoint:")) {
          seen.toVerify.add(g.getStateSource().substring("checkpoint:".length()));
        }
      }
    }
    List<EpochResult> epochs = job.getEpochsList();
    for (int k = seen.epochs; k < epochs.size(); k++) {
      EpochResult e = epochs.get(k);
      // The first epoch's end is its step count, unless max-steps cut it short.
      if (seen.stepsPerEpoch == 0 && e.getEpoch() == 1 && (seen.maxSteps == 0 || e.getStepsDone() < seen.maxSteps)) {
        seen.stepsPerEpoch = (int) e.getStepsDone();
      }
      file.record(new EpochReported(now, id, e.getEpoch(), e.getStepsDone(), e.getSamples(), e.getEachSampleOnce(),
          e.getWorldSize(), e.getMeanLoss(), e.getTestAccuracy()));
    }
    seen.epochs = Math.max(seen.epochs, epochs.size());
    StepsSeen last = seen.lastSteps;
    // Rank 0's live progress when the job has it; steps_done alone moves only when an epoch is
    // recorded. Without progress (the coordinator just moved) a sample keeps the step last seen
    // in the generation rather than go back to the recorded one.
    long step = job.getStepsDone();
    Double loss = epochs.isEmpty() ? null : epochs.get(epochs.size() - 1).getMeanLoss();
    if (job.hasProgress() && job.getProgress().getStepsPerEpoch() > 0) {
      Progress p = job.getProgress();
      seen.stepsPerEpoch = p.getStepsPerEpoch();
      step = (long) (p.getEpoch() - 1) * p.getStepsPerEpoch() + p.getStep();
      loss = p.getMeanLoss();
    } else if (last != null && last.generation() == job.getGeneration()) {
      step = Math.max(step, last.step());
    }
    StepsSeen steps = new StepsSeen(now, id, job.getGeneration(), step, seen.stepsPerEpoch, job.getWorldSize(), loss,
        job.getHealth());
    if (last == null || last.step() != steps.step() || last.generation() != steps.generation()
        || !last.health().equals(steps.health()) || last.stepsPerEpoch() != steps.stepsPerEpoch()
        || now - last.atMillis() >= HEARTBEAT_MILLIS) {
      file.record(steps);
      seen.lastSteps = steps;
    }
    List<RanksPlaced.Rank> ranks = job.getRanksList().stream()
        .map(r -> new RanksPlaced.Rank(r.getRank(), r.getWorker(), r.getNode(), r.getDevice())).toList();
    if (!ranks.equals(seen.ranks)) {
      seen.ranks = ranks;
      file.record(new RanksPlaced(now, id, job.getGeneration(), ranks));
    }
    if (job.getPhase() == JobPhase.SUCCEEDED || job.getPhase() == JobPhase.FAILED || job.getPhase() == JobPhase.CANCELLED) {
      seen.ended = true;
      file.record(new JobEnded(now, id, job.getPhase().name(), job.getMessage(), job.getStepsDone(),
          job.getTestAccuracy(), job.getDigest()));
    }
  }

  /** How many checkpoints of the job the store has shown committed so far (for after-checkpoint rules). */
  public synchronized int checkpointsCommitted(String jobId) {
    Seen seen = jobs.get(jobId);
    return seen == null ? 0 : seen.checkpoints.size();
  }

  /**
   * Reads each job's committed checkpoints and hashes those its generations loaded. A job is read
   * until it ended and nothing is left to verify. Returns false when Cassandra did not answer.
   */
  public synchronized boolean pollStore() {
    boolean answered = true;
    for (Map.Entry<String, Seen> e : jobs.entrySet()) {
      Seen seen = e.getValue();
      if (seen.ended && seen.toVerify.isEmpty()) {
        continue;
      }
      try {
        readCheckpoints(e.getKey(), seen);
        verify(e.getKey(), seen, false);
      } catch (RuntimeException unreachable) {
        answered = false; // Cassandra is down or slow (perhaps the fault): look again next time
      }
    }
    return answered;
  }

  /**
   * After the run: verifies what is left (a checkpoint that is gone by now is recorded as unread)
   * and reads every job's journal. Cassandra must answer by then; failures propagate.
   */
  public synchronized void finish() {
    for (Map.Entry<String, Seen> e : jobs.entrySet()) {
      readCheckpoints(e.getKey(), e.getValue());
      verify(e.getKey(), e.getValue(), true);
      readJournal(e.getKey());
    }
  }

  private void readCheckpoints(String jobId, Seen seen) {
    for (Row row : cql().execute(SimpleStatement.newInstance("SELECT checkpoint_id, step, sha256, created_at FROM "
        + store.checkpointKeyspace() + ".checkpoints WHERE job_id = ?", jobId).setConsistencyLevel(ConsistencyLevel.ONE))) {
      String id = row.getString("checkpoint_id");
      if (seen.checkpoints.add(id)) {
        Instant created = row.getInstant("created_at");
        file.record(new CheckpointCommitted(created != null ? created.toEpochMilli() : clock.getAsLong(), jobId, id,
            row.getLong("step"), row.getString("sha256")));
      }
    }
  }

  /** Hashes each loaded checkpoint's stored chunks; {@code last}: one that is gone is recorded as unread. */
  private void verify(String jobId, Seen seen, boolean last) {
    for (String id : List.copyOf(seen.toVerify)) {
      Row meta = cql().execute(SimpleStatement.newInstance("SELECT chunks, sha256 FROM " + store.checkpointKeyspace()
          + ".checkpoints WHERE job_id = ? AND checkpoint_id = ? ALLOW FILTERING", jobId, id)
          .setConsistencyLevel(ConsistencyLevel.ONE)).one();
      if (meta == null) {
        if (last) {
          file.record(new CheckpointVerified(clock.getAsLong(), jobId, id, "", ""));
          seen.toVerify.remove(id);
        }
        continue;
      }
      MessageDigest sha = sha256();
      boolean whole = true;
      for (int chunk = 0; chunk < meta.getInt("chunks") && whole; chunk++) {
        Row data = cql().execute(SimpleStatement.newInstance("SELECT data FROM " + store.checkpointKeyspace()
            + ".checkpoint_chunks WHERE job_id = ? AND checkpoint_id = ? AND chunk = ?", jobId, id, chunk)
            .setConsistencyLevel(ConsistencyLevel.ONE)).one();
        ByteBuffer bytes = data == null ? null : data.getByteBuffer("data");
        whole = bytes != null;
        if (whole) {
          sha.update(bytes);
        }
      }
      if (whole || last) {
        file.record(new CheckpointVerified(clock.getAsLong(), jobId, id, meta.getString("sha256"),
            whole ? HexFormat.of().formatHex(sha.digest()) : ""));
        seen.toVerify.remove(id);
      }
    }
  }

  /** The writers of a job's journal in sequence order, and the sequence numbers missing. */
  private void readJournal(String jobId) {
    List<JournalRead.WriterRun> runs = new ArrayList<>();
    List<Long> missing = new ArrayList<>();
    long expected = 1;
    String writer = null;
    long first = 0;
    long lastSeq = 0;
    // Kaon's journals stay in partition 0: the plugin's target-partition-size (500,000) is far above
    // the events of any job.
    for (Row row : cql().execute(SimpleStatement.newInstance("SELECT sequence_nr, writer_uuid FROM "
        + store.journalKeyspace() + ".messages WHERE persistence_id = ? AND partition_nr = 0", "Job|" + jobId)
        .setConsistencyLevel(ConsistencyLevel.QUORUM))) {
      long seq = row.getLong("sequence_nr");
      for (; expected < seq; expected++) {
        missing.add(expected);
      }
      expected = seq + 1;
      String w = row.getString("writer_uuid");
      if (!w.equals(writer)) {
        if (writer != null) {
          runs.add(new JournalRead.WriterRun(writer, first, lastSeq));
        }
        writer = w;
        first = seq;
      }
      lastSeq = seq;
    }
    if (writer != null) {
      runs.add(new JournalRead.WriterRun(writer, first, lastSeq));
    }
    file.record(new JournalRead(clock.getAsLong(), jobId, runs, missing));
  }

  private CqlSession cql() {
    if (cql == null) {
      // Short timeouts: the recorder looks again a second later, and a hung call would stall the run.
      cql = CqlSession.builder().addContactPoint(new InetSocketAddress(store.host(), store.port()))
          .withLocalDatacenter("datacenter1")
          .withConfigLoader(DriverConfigLoader.programmaticBuilder()
              .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(5))
              .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, Duration.ofSeconds(5))
              .build())
          .build();
    }
    return cql;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

  @Override
  public synchronized void close() {
    if (cql != null) {
      cql.close();
    }
  }
}
