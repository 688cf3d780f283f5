package kaon.actors.worker;

import java.util.TreeMap;
import java.util.function.LongFunction;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.checkpoint.CheckpointStore;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * What a worker says to its job's coordinator about one generation, and the reports of it that
 * must not be lost. Reports the coordinator persists (epochs, checkpoints, the final digest) get
 * a sequence number and are kept until acknowledged, and sent again meanwhile: the coordinator may
 * be restarting (Cassandra down) when they are first sent. A failure is kept too, and said again
 * to a coordinator that recovered, so that the job re-forms for its reason instead of after a
 * silent wait.
 *
 * <p>Rank 0's checkpoints are written by a {@link CheckpointWriter}, and its final digest goes out
 * only once a {@link ModelWriter} has stored the trained model (a job that succeeded has a model
 * to download): both are children of the worker that this outbox starts and stops with its
 * generation. Runs on the worker's thread; the worker runs the resend timer.
 */
final class Outbox {

  private final ActorContext<?> context;
  private final CheckpointStore store;
  private final ActorRef<ModelWriter.Report> modelReports;
  private final ActorRef<CheckpointWriter.Outcome> checkpointOutcomes;
  private final TreeMap<Long, WorkerReport> unacknowledged = new TreeMap<>();
  private String jobId = "";
  private long generation;
  private int rank;
  /**
   * Where everything goes: the coordinator of the newest Prepare, moved by a Reattach when the
   * job's entity started again elsewhere (its node died). Prepare's own reference would then be
   * dead, and a failure sent to it would leave the job waiting.
   */
  private ActorRef<WorkerReport> coordinator;
  private long nextSeq;
  private WorkerReport.Failed failure;
  private ActorRef<CheckpointWriter.Command> checkpointWriter;
  private ActorRef<ModelWriter.Command> modelWriter;

  /** The outbox of the worker whose {@code context} it is; the writers report to the adapters given. */
  Outbox(ActorContext<?> context, CheckpointStore store, ActorRef<ModelWriter.Report> modelReports,
      ActorRef<CheckpointWriter.Outcome> checkpointOutcomes) {
    this.context = context;
    this.store = store;
    this.modelReports = modelReports;
    this.checkpointOutcomes = checkpointOutcomes;
  }

  /** A new generation: what was said about the previous one no longer counts. */
  void start(String jobId, long generation, int rank, ActorRef<WorkerReport> coordinator) {
    stopWriters();
    unacknowledged.clear();
    this.jobId = jobId;
    this.generation = generation;
    this.rank = rank;
    this.coordinator = coordinator;
    this.nextSeq = 0;
    this.failure = null;
  }

  long generation() {
    return generation;
  }

  /** The rank this worker has in the outbox's generation (ranks change between generations). */
  int rank() {
    return rank;
  }

  /** Tells the coordinator {@code report} once (it is not persisted: progress, health, readiness). */
  void tell(WorkerReport report) {
    if (coordinator != null) {
      coordinator.tell(report);
    }
  }

  /** The run of this generation failed here: said now, and again to a coordinator that recovers. */
  void failed(WorkerReport.Failed failed) {
    failure = failed;
    tell(failed);
  }

  WorkerReport.Failed failure() {
    return failure;
  }

  /** What the training thread has to say about the outbox's generation. */
  void fromRun(RunEvent event) {
    if (event instanceof RunEvent.Progressed p && p.progress().generation() == generation) {
      tell(p.progress());
    } else if (event instanceof RunEvent.CheckpointReady ready && ready.generation() == generation) {
      if (checkpointWriter == null) {
        checkpointWriter = context.spawn(CheckpointWriter.create(store, generation, checkpointOutcomes),
            "checkpoint-writer-" + generation);
      }
      checkpointWriter.tell(new CheckpointWriter.Write(ready.data()));
    } else if (event instanceof RunEvent.Report report && report.generation() == generation) {
      if (report.body() instanceof RunEvent.EpochSums e) {
        send(seq -> new WorkerReport.EpochReport(generation, rank, seq, e.epoch(), e.lossSum(), e.correct(), e.examples(),
            e.eachSampleOnce(), e.testCorrect(), e.testExamples(), e.trainNanos(), e.stepsDone()));
      } else if (report.body() instanceof RunEvent.Finished f && f.model() != null) {
        // The digest waits for the model to be stored (modelReport).
        modelWriter = context.spawn(ModelWriter.create(store, jobId, generation, f.digest(), f.model(), modelReports),
            "model-writer-" + generation);
      } else {
        send(seq -> new WorkerReport.Finished(generation, rank, seq, ((RunEvent.Finished) report.body()).digest()));
      }
    }
  }

  void modelReport(ModelWriter.Report report) {
    if (report instanceof ModelWriter.Failing failing && failing.generation() == generation) {
      tell(new WorkerReport.CheckpointHealth(generation, rank, failing.problem()));
    } else if (report instanceof ModelWriter.Stored stored && stored.generation() == generation) {
      modelWriter = null;
      if (stored.recovered()) {
        tell(new WorkerReport.CheckpointHealth(generation, rank, ""));
      }
      send(seq -> new WorkerReport.Finished(generation, rank, seq, stored.digest()));
    }
  }

  void checkpointOutcome(CheckpointWriter.Outcome outcome) {
    if (outcome.generation() != generation) {
      return;
    }
    if (outcome instanceof CheckpointWriter.Health health) {
      tell(new WorkerReport.CheckpointHealth(generation, rank, health.problem()));
    } else {
      CheckpointInfo info = ((CheckpointWriter.Written) outcome).info();
      send(seq -> new WorkerReport.CheckpointWritten(generation, rank, seq, info));
    }
  }

  /** Report {@code seq} of {@code generation} is persisted. */
  void acknowledged(long generation, long seq) {
    if (generation == this.generation) {
      unacknowledged.remove(seq);
    }
  }

  /** Reports not acknowledged yet, or rank 0's digest waiting for its model: the worker must stay. */
  boolean pending() {
    return !unacknowledged.isEmpty() || modelWriter != null;
  }

  /** Whether anything must be sent again until acknowledged. */
  boolean unacknowledged() {
    return !unacknowledged.isEmpty();
  }

  void resend() {
    unacknowledged.values().forEach(this::tell);
  }

  /** The job's coordinator now answers at {@code coordinator}. */
  void redirect(ActorRef<WorkerReport> coordinator) {
    this.coordinator = coordinator;
  }

  private void send(LongFunction<WorkerReport> make) {
    long seq = nextSeq++;
    WorkerReport report = make.apply(seq);
    unacknowledged.put(seq, report);
    tell(report);
  }

  private void stopWriters() {
    if (modelWriter != null) {
      context.stop(modelWriter);
      modelWriter = null;
    }
    if (checkpointWriter != null) {
      context.stop(checkpointWriter);
      checkpointWriter = null;
    }
  }
}
