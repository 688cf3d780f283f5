package kaon.actors.job;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import java.io.NotSerializableException;
import java.util.List;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.protocol.v1.CheckpointCommitted;
import kaon.protocol.v1.EpochCompleted;
import kaon.protocol.v1.GenerationStarted;
import kaon.protocol.v1.JobCancelled;
import kaon.protocol.v1.JobFailed;
import kaon.protocol.v1.JobSubmitted;
import kaon.protocol.v1.JobSucceeded;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * The journal format of {@link JobEvent}s: the protobuf messages of {@code
 * kaon/v1/events.proto}, one short manifest per event type. Protobuf, not Kryo, because journal
 * bytes must decode after the classes change; field numbers never change and a golden-bytes test
 * checks that old bytes keep decoding. Manifests are part of the format too: never rename one.
 */
public final class JobEventSerializer extends SerializerWithStringManifest {

  /** Pekko serializer id; fixed forever (it is stored next to every event). */
  public static final int IDENTIFIER = 7403;

  static final String SUBMITTED = "JS";
  static final String GENERATION = "GS";
  static final String EPOCH = "EC";
  static final String CHECKPOINT = "CC";
  static final String SUCCEEDED = "OK";
  static final String FAILED = "JF";
  static final String CANCELLED = "JC";
  static final String SCALED = "SC";

  public JobEventSerializer(ExtendedActorSystem system) {}

  @Override
  public int identifier() {
    return IDENTIFIER;
  }

  @Override
  public String manifest(Object o) {
    if (o instanceof JobEvent.JobSubmitted) {
      return SUBMITTED;
    } else if (o instanceof JobEvent.GenerationStarted) {
      return GENERATION;
    } else if (o instanceof JobEvent.EpochCompleted) {
      return EPOCH;
    } else if (o instanceof JobEvent.CheckpointCommitted) {
      return CHECKPOINT;
    } else if (o instanceof JobEvent.JobSucceeded) {
      return SUCCEEDED;
    } else if (o instanceof JobEvent.JobFailed) {
      return FAILED;
    } else if (o instanceof JobEvent.JobCancelled) {
      return CANCELLED;
    } else if (o instanceof JobEvent.JobScaled) {
      return SCALED;
    }
    throw new IllegalArgumentException("not a job event: " + o.getClass().getName());
  }

  @Override
  public byte[] toBinary(Object o) {
    return toProto(o).toByteArray();
  }

  private static MessageLite toProto(Object o) {
    if (o instanceof JobEvent.JobSubmitted e) {
      return JobSubmitted.newBuilder().setSpec(spec(e.spec())).setAtMillis(e.atMillis()).build();
    } else if (o instanceof JobEvent.GenerationStarted e) {
      return GenerationStarted.newBuilder().setGeneration(e.generation()).setWorldSize(e.worldSize())
          .setResumeStep(e.resumeStep()).setReason(e.reason()).setStateSource(e.stateSource().toString())
          .addAllMembers(e.members()).setAtMillis(e.atMillis()).build();
    } else if (o instanceof JobEvent.EpochCompleted e) {
      return epoch(e.metrics(), e.stepsDone());
    } else if (o instanceof JobEvent.CheckpointCommitted e) {
      return checkpoint(e.checkpoint());
    } else if (o instanceof JobEvent.JobSucceeded e) {
      return JobSucceeded.newBuilder().setTestAccuracy(e.testAccuracy()).setDigest(e.digest()).setAtMillis(e.atMillis())
          .build();
    } else if (o instanceof JobEvent.JobFailed e) {
      return JobFailed.newBuilder().setReason(e.reason()).setAtMillis(e.atMillis()).build();
    } else if (o instanceof JobEvent.JobCancelled e) {
      return JobCancelled.newBuilder().setAtMillis(e.atMillis()).build();
    } else if (o instanceof JobEvent.JobScaled e) {
      return kaon.protocol.v1.JobScaled.newBuilder().setMinWorkers(e.minWorkers()).setMaxWorkers(e.maxWorkers()).build();
    }
    throw new IllegalArgumentException("not a job event: " + o.getClass().getName());
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    try {
      return switch (manifest) {
        case SUBMITTED -> {
          JobSubmitted p = JobSubmitted.parseFrom(bytes);
          yield new JobEvent.JobSubmitted(spec(p.getSpec()), p.getAtMillis());
        }
        case GENERATION -> {
          GenerationStarted p = GenerationStarted.parseFrom(bytes);
          yield new JobEvent.GenerationStarted(p.getGeneration(), p.getWorldSize(), p.getResumeStep(),
              p.getReason(), StateSource.parse(p.getStateSource()),
              p.getMembersCount() > 0 ? List.copyOf(p.getMembersList()) : JobEvent.GenerationStarted.ranks(p.getWorldSize()),
              p.getAtMillis());
        }
        case EPOCH -> {
          EpochCompleted p = EpochCompleted.parseFrom(bytes);
          yield new JobEvent.EpochCompleted(epoch(p), p.getStepsDone());
        }
        case CHECKPOINT -> new JobEvent.CheckpointCommitted(checkpoint(CheckpointCommitted.parseFrom(bytes)));
        case SUCCEEDED -> {
          JobSucceeded p = JobSucceeded.parseFrom(bytes);
          yield new JobEvent.JobSucceeded(p.getTestAccuracy(), p.getDigest(), p.getAtMillis());
        }
        case FAILED -> {
          JobFailed p = JobFailed.parseFrom(bytes);
          yield new JobEvent.JobFailed(p.getReason(), p.getAtMillis());
        }
        case CANCELLED -> new JobEvent.JobCancelled(JobCancelled.parseFrom(bytes).getAtMillis());
        case SCALED -> {
          kaon.protocol.v1.JobScaled p = kaon.protocol.v1.JobScaled.parseFrom(bytes);
          yield new JobEvent.JobScaled(p.getMinWorkers(), p.getMaxWorkers());
        }
        default -> throw new NotSerializableException("unknown job event manifest '" + manifest + "'");
      };
    } catch (InvalidProtocolBufferException e) {
      throw new NotSerializableException("job event " + manifest + " does not decode: " + e.getMessage());
    }
  }

  // The parts a snapshot of a job's state shares with its events (see JobStateSerializer).

  static EpochCompleted epoch(EpochMetrics m, long stepsDone) {
    return EpochCompleted.newBuilder().setStepsDone(stepsDone).setMetrics(kaon.protocol.v1.EpochMetrics.newBuilder()
        .setEpoch(m.epoch()).setMeanLoss(m.meanLoss()).setTrainAccuracy(m.trainAccuracy())
        .setTestAccuracy(m.testAccuracy()).setSamplesPerSecond(m.samplesPerSecond())
        .setTrainSeconds(m.trainSeconds()).setWorldSize(m.worldSize())
        .setSamples(m.samples()).setEachSampleOnce(m.eachSampleOnce())).build();
  }

  static EpochMetrics epoch(EpochCompleted p) {
    kaon.protocol.v1.EpochMetrics m = p.getMetrics();
    return new EpochMetrics(m.getEpoch(), m.getMeanLoss(), m.getTrainAccuracy(), m.getTestAccuracy(),
        m.getSamplesPerSecond(), m.getTrainSeconds(), m.getWorldSize(), p.getStepsDone(), m.getSamples(), m.getEachSampleOnce());
  }

  static CheckpointCommitted checkpoint(CheckpointInfo c) {
    return CheckpointCommitted.newBuilder().setCheckpointId(c.id()).setStep(c.step()).setEpoch(c.epoch())
        .setBytes(c.bytes()).setSha256(c.sha256()).build();
  }

  static CheckpointInfo checkpoint(CheckpointCommitted p) {
    return new CheckpointInfo(p.getCheckpointId(), p.getStep(), p.getEpoch(), p.getBytes(), p.getSha256());
  }

  static kaon.protocol.v1.JobSpec spec(JobSpec s) {
    OptimizerSpec o = s.optimizer();
    return kaon.protocol.v1.JobSpec.newBuilder()
        .setTask(s.task()).setWorkers(s.workers()).setEpochs(s.epochs()).setGlobalBatch(s.globalBatch())
        .setSeed(s.seed()).setMaxSteps(s.maxSteps()).setModelOutput(s.modelOutput())
        .setCheckpointEverySteps(s.checkpointEverySteps())
        .setMinWorkers(s.minWorkers())
        .setMaxWorkers(s.maxWorkers())
        .setOptimizer(kaon.protocol.v1.OptimizerSpec.newBuilder()
            .setKind(o.kind().name().toLowerCase(java.util.Locale.ROOT)).setLearningRate(o.learningRate())
            .setMomentum(o.momentum()).setBeta1(o.beta1()).setBeta2(o.beta2()).setEpsilon(o.epsilon())
            .setWeightDecay(o.weightDecay()))
        .build();
  }

  static JobSpec spec(kaon.protocol.v1.JobSpec p) {
    kaon.protocol.v1.OptimizerSpec o = p.getOptimizer();
    int min = p.getMinWorkers() == 0 ? p.getWorkers() : p.getMinWorkers();
    int max = p.getMaxWorkers() == 0 ? p.getWorkers() : p.getMaxWorkers();
    return new JobSpec(p.getTask(), p.getWorkers(), min, max, p.getEpochs(), p.getGlobalBatch(),
        new OptimizerSpec(OptimizerSpec.Kind.parse(o.getKind()), o.getLearningRate(), o.getMomentum(), o.getBeta1(),
            o.getBeta2(), o.getEpsilon(), o.getWeightDecay()),
        p.getSeed(), p.getMaxSteps(), p.getModelOutput(), p.getCheckpointEverySteps());
  }
}
