package kaon.actors.worker;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import kaon.actors.metrics.KaonMetrics;
import java.util.List;
import java.util.function.LongPredicate;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.chaos.RuntimeFaults;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.data.EpochSampler;
import kaon.actors.data.LabeledImages;
import kaon.actors.data.SampleLedger;
import kaon.actors.training.DivergenceGuard;
import kaon.actors.training.JobSpec;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.Optimizer;
import kaon.actors.training.TaskData;
import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The steps of one generation on one rank: forward/backward on this rank's slice of the global
 * batch, the summed gradient all-reduced through the generation's peer, checked by the {@link
 * DivergenceGuard}, then the optimizer with the global mean. What happens around a step (rank 0's
 * checkpoints and progress) are {@link StepListener}s, in the way of DJL's training listeners;
 * at each epoch's end the rank evaluates its share of the test split and reports the epoch, and
 * at the generation's end it reports its digest (rank 0 with the trained model).
 *
 * <p>Runs on the worker's training thread. Everything it learns goes to the worker as {@link
 * RunEvent}s; the replica's position after each step goes to {@link Moves}.
 */
final class TrainingLoop {

  private static final Logger log = LoggerFactory.getLogger(TrainingLoop.class);

  /** Steps done, the cursor and the current epoch's sums: the replica's position in the job. */
  record Position(long step, int epoch, int stepInEpoch, double lossSum, long correct, SampleLedger ledger) {
    static Position of(CheckpointData data) {
      return new Position(data.step(), data.epoch(), data.stepInEpoch(), data.epochLossSum(), data.epochCorrect(),
          data.epochLedger());
    }
  }

  /** Told where the replica is after each completed step. */
  interface Moves {
    void moved(Position where);
  }

  /** Something done after each completed step, given where the replica is now. */
  interface StepListener {
    void afterStep(Position where, int stepsPerEpoch, long lastStep);
  }

  /** The generation of the loop: who this rank is in it and how it sums with the others. */
  record Generation(String jobId, JobSpec spec, long generation, int rank, int worldSize, Exchange exchange,
      KaonMetrics.Steps metrics) {}

  private final Generation g;
  private final ModelReplica replica;
  private final Optimizer optimizer;
  private final TaskData data;
  private final WorkerSettings settings;
  private final RuntimeFaults faults;
  private final ActorRef<RunEvent> worker;
  /** Whether the generation was asked to stop (at the next step boundary). */
  private final LongPredicate stopRequested;
  private final Moves moves;
  private final List<StepListener> listeners = new ArrayList<>();

  private final StepProfile profile;

  TrainingLoop(Generation g, ModelReplica replica, Optimizer optimizer, TaskData data, WorkerSettings settings,
      RuntimeFaults faults, ActorRef<RunEvent> worker, LongPredicate stopRequested, Moves moves) {
    this.faults = faults;
    this.g = g;
    this.replica = replica;
    this.optimizer = optimizer;
    this.data = data;
    this.settings = settings;
    this.worker = worker;
    this.stopRequested = stopRequested;
    this.moves = moves;
    this.profile = new StepProfile(g.metrics());
    if (g.rank() == 0) {
      listeners.add(this::checkpoint);
      listeners.add(new ProgressReports());
    }
  }

  /** Trains from {@code resume} to the job's last step, or until the generation is stopped. */
  void run(CheckpointData resume) throws InterruptedException {
    JobSpec spec = g.spec();
    LabeledImages train = data.train();
    EpochSampler sampler = new EpochSampler(spec.seed(), train.count(), spec.globalBatch());
    int steps = sampler.stepsPerEpoch();
    long total = (long) steps * spec.epochs();
    long lastStep = spec.maxSteps() > 0 ? Math.min(spec.maxSteps(), total) : total;
    // The gradients, then this step's sums: loss, correct predictions and the slice's sample
    // ledger. Reduced with the gradients, they give every rank the global batch's figures.
    int tail = replica.size();
    float[] flat = new float[tail + 2 + SampleLedger.FLOATS];
    boolean verifiable = SampleLedger.verifiable(spec.globalBatch());
    float scale = 1f / spec.globalBatch();
    long stepsDone = resume.step();
    DivergenceGuard guard = new DivergenceGuard(settings.gradientSpikeFactor());
    // A state whose epoch has all its steps (stepInEpoch == steps) still owes the epoch's report:
    // the loop below evaluates and reports it before going on (a report already recorded is
    // acknowledged and dropped by the coordinator).
    int firstEpoch = resume.epoch();
    long firstStep = stepsDone;
    for (int epoch = firstEpoch; epoch < spec.epochs()
        && (stepsDone < lastStep || epoch == firstEpoch && resume.stepInEpoch() == steps); epoch++) {
      int[] permutation = sampler.permutation(epoch);
      // A resumed epoch keeps the sums it had, so its metrics and its ledger cover the whole epoch.
      boolean resumed = epoch == firstEpoch;
      double lossSum = resumed ? resume.epochLossSum() : 0;
      long correct = resumed ? resume.epochCorrect() : 0;
      SampleLedger ledger = resumed ? resume.epochLedger() : SampleLedger.EMPTY;
      long start = System.nanoTime();
      profile.startEpoch();
      for (int step = resumed ? resume.stepInEpoch() : 0; step < steps && stepsDone < lastStep; step++) {
        if (stopRequested.test(g.generation())) {
          return;
        }
        profile.startStep();
        int[] slice = sampler.slice(permutation, step, g.rank(), g.worldSize());
        Duration slow = faults.stepDelay(g.jobId(), g.rank());
        if (!slow.isZero()) {
          Thread.sleep(slow.toMillis());
        }
        ModelReplica.StepResult result = replica.computeGradients(train, slice, flat);
        float poison = faults.poison(g.jobId(), g.rank(), g.generation());
        if (poison != 0) {
          // A gradient value, not a sum: the divergence guard must catch it after the reduction.
          log.warn("job {} generation {}: rank {} poisons its gradient of step {} with {} (a runtime fault)", g.jobId(),
              g.generation(), g.rank(), stepsDone, poison);
          flat[0] = poison;
        }
        flat[tail] = (float) result.lossSum();
        flat[tail + 1] = result.correct();
        SampleLedger.writeSlice(slice, flat, tail + 2);
        profile.lap(StepProfile.Part.COMPUTE);
        AllReducePeer.Reduced reduced = g.exchange().reduce(stepsDone, flat);
        profile.exchanged(reduced.nanos());
        float[] sum = reduced.buffer();
        try {
          guard.check(stepsDone, sum, tail);
        } catch (DivergenceGuard.DivergedException e) {
          log.error("job {} generation {}: {} (loss sum {}, this rank's own loss {})", g.jobId(), g.generation(),
              e.getMessage(), sum[tail], result.lossSum());
          throw e;
        }
        lossSum += sum[tail];
        correct += (long) sum[tail + 1];
        ledger = ledger.plusReduced(sum, tail + 2);
        profile.lap(StepProfile.Part.CHECK);
        replica.applyGradients(sum, scale, optimizer);
        profile.lap(StepProfile.Part.OPTIMIZER);
        if (g.rank() == 0 && stepsDone == firstStep) {
          // Recovery is measured to here (bench/recovery): the job trains again.
          log.info("job {} generation {}: first step completed (step {}, {} ranks)", g.jobId(), g.generation(), stepsDone,
              g.worldSize());
        }
        stepsDone++;
        Position where = new Position(stepsDone, epoch, step + 1, lossSum, correct, ledger);
        moves.moved(where);
        for (StepListener listener : listeners) {
          listener.afterStep(where, steps, lastStep);
        }
        profile.lap(StepProfile.Part.AFTER);
        profile.stepDone(slice.length, (long) flat.length * Float.BYTES);
      }
      profile.endEpoch(g.jobId(), g.generation(), g.rank(), g.worldSize(), epoch);
      reportEpoch(epoch, permutation, steps, stepsDone, lossSum, correct, ledger, verifiable, System.nanoTime() - start);
    }
    finish();
  }

  /** Rank 0 checkpoints every {@code checkpointEverySteps}, but not at the last step (the model is stored then). */
  private void checkpoint(Position p, int stepsPerEpoch, long lastStep) {
    JobSpec spec = g.spec();
    if (spec.checkpointEverySteps() > 0 && p.step() % spec.checkpointEverySteps() == 0 && p.step() < lastStep) {
      // The copy is the only cost here: encoding and writing happen elsewhere. At the end of an
      // epoch the checkpoint keeps the epoch's sums, so a resumed run can still report it.
      worker.tell(new RunEvent.CheckpointReady(g.generation(), new CheckpointData(g.jobId(), p.step(), p.epoch(),
          p.stepInEpoch(), spec.seed(), g.worldSize(), replica.exportParameters(), optimizer.exportState(), p.lossSum(),
          p.correct(), p.ledger())));
    }
  }

  /** Rank 0 says where it is inside the epoch every {@code progress-interval}, through its worker. */
  private final class ProgressReports implements StepListener {
    private long next;

    @Override
    public void afterStep(Position p, int stepsPerEpoch, long lastStep) {
      if (System.nanoTime() >= next) {
        next = System.nanoTime() + settings.progressInterval().toNanos();
        // Through the worker: it knows where the coordinator is now (it may have moved).
        worker.tell(new RunEvent.Progressed(new WorkerReport.StepProgress(g.generation(), p.epoch(), p.stepInEpoch(),
            stepsPerEpoch, p.lossSum() / Math.max(1, p.ledger().samples()))));
      }
    }
  }

  /** Evaluates this rank's share of the test split and reports epoch {@code epoch}. */
  private void reportEpoch(int epoch, int[] permutation, int steps, long stepsDone, double lossSum, long correct,
      SampleLedger ledger, boolean verifiable, long trainNanos) {
    LabeledImages test = data.test();
    int from = (int) ((long) test.count() * g.rank() / g.worldSize());
    int to = (int) ((long) test.count() * (g.rank() + 1) / g.worldSize());
    int testCorrect = replica.countCorrect(test, from, to, settings.evalBatch());
    // Every sample of the epoch exactly once: what the ranks consumed, step by step and across
    // generations, against the epoch's plan.
    int stepsOfEpoch = (int) (stepsDone - (long) epoch * steps);
    SampleLedger planned = SampleLedger.ofPlanned(permutation, stepsOfEpoch, g.spec().globalBatch());
    boolean eachOnce = verifiable && ledger.equals(planned);
    if (!eachOnce && verifiable) {
      log.error("job {} epoch {}: the samples used differ from the epoch's plan: used {}, planned {}", g.jobId(), epoch + 1,
          ledger, planned);
    }
    worker.tell(new RunEvent.Report(g.generation(), new RunEvent.EpochSums(epoch, lossSum, correct, ledger.samples(),
        eachOnce, testCorrect, to - from, trainNanos, stepsDone)));
  }

  /**
   * The generation's last step is done: every rank reports its digest. Rank 0 delivers the model:
   * the file DJL writes, stored by its worker before the digest (the file's sha256, which every
   * rank computes the same way) goes out.
   */
  private void finish() {
    if (g.rank() != 0) {
      worker.tell(new RunEvent.Report(g.generation(), new RunEvent.Finished(replica.digest(), null)));
      return;
    }
    byte[] model = replica.parametersFile();
    JobSpec spec = g.spec();
    if (!spec.modelOutput().isEmpty()) {
      try {
        Path file = ModelFile.write(settings.modelDir(), spec.modelOutput(), model);
        log.info("job {}: rank 0 wrote the model to {}", g.jobId(), file);
      } catch (java.io.IOException e) {
        throw new StepFailedException("cannot write the model to " + spec.modelOutput() + " under " + settings.modelDir()
            + ": " + e.getMessage());
      }
    }
    worker.tell(new RunEvent.Report(g.generation(), new RunEvent.Finished(CheckpointStore.checksum(model), model)));
  }

  /** A step that cannot complete; its message is meant for the job's status. */
  static final class StepFailedException extends RuntimeException {
    StepFailedException(String message) {
      super(message);
    }
  }
}
