package kaon.runtime.grpc;

import com.google.protobuf.util.Timestamps;
import java.util.Locale;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.job.EpochMetrics;
import kaon.actors.job.JobProgress;
import kaon.actors.job.JobStatus;
import kaon.actors.job.JobUpdate;
import kaon.actors.training.JobSpec;
import kaon.protocol.v1.CheckpointRef;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.Progress;

/** The API's view of jobs, made from the coordinator's. */
final class ApiMapping {

  private ApiMapping() {}

  static Job job(JobStatus s) {
    Job.Builder b = Job.newBuilder()
        .setJobId(s.jobId())
        .setPhase(phase(s.phase()))
        .setGeneration(s.generation())
        .setWorldSize(s.worldSize())
        .setStepsDone(s.stepsDone())
        .setHealth(s.health())
        .setTestAccuracy(Double.isNaN(s.testAccuracy()) ? 0 : s.testAccuracy())
        .setDigest(s.digest())
        .setMessage(s.message())
        .setStateSource(s.stateSource())
        .setCoordinatorNode(s.coordinatorNode());
    if (s.spec() != null) {
      b.setSpec(spec(s.spec(), s.minWorkers(), s.maxWorkers()));
    }
    s.epochs().forEach(m -> b.addEpochs(epoch(m)));
    s.generations().forEach(g -> b.addGenerations(kaon.protocol.v1.Generation.newBuilder()
        .setGeneration(g.generation())
        .setWorldSize(g.worldSize())
        .setResumeStep(g.resumeStep())
        .setReason(g.reason())
        .setStateSource(g.stateSource())
        .addAllWorkers(g.members())
        .setAtMillis(g.atMillis())));
    s.ranks().forEach(r -> b.addRanks(kaon.protocol.v1.RankPlacement.newBuilder()
        .setRank(r.rank())
        .setWorker(r.worker())
        .setNode(r.node())
        .setDevice(r.device())
        .setEdge(r.edge())
        .setEdgeReason(r.how())));
    if (s.progress() != null) {
      b.setProgress(progress(s.progress()));
    }
    CheckpointInfo c = s.latestCheckpoint();
    if (c != null) {
      b.setLatestCheckpoint(CheckpointRef.newBuilder().setId(c.id()).setStep(c.step()).setEpoch(c.epoch()).setBytes(c.bytes()));
    }
    // 0 is "not known" (or not yet): the field stays unset rather than saying 1970.
    if (s.createdAtMillis() != 0) {
      b.setCreatedAt(Timestamps.fromMillis(s.createdAtMillis()));
    }
    if (s.startedAtMillis() != 0) {
      b.setStartedAt(Timestamps.fromMillis(s.startedAtMillis()));
    }
    if (s.endedAtMillis() != 0) {
      b.setEndedAt(Timestamps.fromMillis(s.endedAtMillis()));
    }
    return b.build();
  }

  static JobSpecification spec(JobSpec s, int min, int max) {
    return JobSpecification.newBuilder()
        .setTask(s.task())
        .setMinWorkers(min)
        .setMaxWorkers(max)
        .setEpochs(s.epochs())
        .setGlobalBatch(s.globalBatch())
        .setOptimizer(s.optimizer().kind().name().toLowerCase(Locale.ROOT))
        .setLearningRate(s.optimizer().learningRate())
        .setMomentum(s.optimizer().momentum())
        .setWeightDecay(s.optimizer().weightDecay())
        .setSeed(s.seed())
        .setMaxSteps(s.maxSteps())
        .setCheckpointEverySteps(s.checkpointEverySteps())
        .setModelOutput(s.modelOutput())
        .build();
  }

  static EpochResult epoch(EpochMetrics m) {
    return EpochResult.newBuilder()
        .setEpoch(m.epoch())
        .setMeanLoss(m.meanLoss())
        .setTrainAccuracy(m.trainAccuracy())
        .setTestAccuracy(Double.isNaN(m.testAccuracy()) ? 0 : m.testAccuracy())
        .setSamplesPerSecond(m.samplesPerSecond())
        .setTrainSeconds(m.trainSeconds())
        .setWorldSize(m.worldSize())
        .setStepsDone(m.stepsDone())
        .setSamples(m.samples())
        .setEachSampleOnce(m.eachSampleOnce())
        .build();
  }

  static JobEvent event(JobUpdate update) {
    if (update instanceof JobUpdate.StatusChanged s) {
      return JobEvent.newBuilder().setStatus(job(s.status())).build();
    } else if (update instanceof JobUpdate.Progress p) {
      return JobEvent.newBuilder().setProgress(progress(p.progress())).build();
    }
    return JobEvent.newBuilder().setEpoch(epoch(((JobUpdate.EpochFinished) update).metrics())).build();
  }

  private static Progress progress(JobProgress p) {
    return Progress.newBuilder().setEpoch(p.epoch()).setStep(p.step()).setStepsPerEpoch(p.stepsPerEpoch())
        .setMeanLoss(p.meanLoss()).build();
  }

  static JobPhase phase(JobStatus.Phase p) {
    return switch (p) {
      case UNKNOWN -> JobPhase.JOB_PHASE_UNSPECIFIED;
      case STARTING -> JobPhase.STARTING;
      case RUNNING -> JobPhase.RUNNING;
      case SUCCEEDED -> JobPhase.SUCCEEDED;
      case FAILED -> JobPhase.FAILED;
      case CANCELLED -> JobPhase.CANCELLED;
    };
  }
}
