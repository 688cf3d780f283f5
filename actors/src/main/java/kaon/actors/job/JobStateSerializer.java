package kaon.actors.job;

import com.google.protobuf.InvalidProtocolBufferException;
import java.io.NotSerializableException;
import java.util.List;
import kaon.protocol.v1.GenerationStarted;
import kaon.protocol.v1.JobCourse;
import kaon.protocol.v1.JobStateSnapshot;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * The snapshot format of a job's {@link JobState}: {@code JobStateSnapshot} of {@code
 * kaon/v1/events.proto}, sharing its parts with the events' ({@link JobEventSerializer}).
 * Protobuf, not Kryo, for the same reason as the events: snapshot bytes outlive the classes. A
 * snapshot the coordinator cannot read is not fatal to a job (its events are all kept), but its
 * format follows the events' rules all the same: field numbers and the manifest never change.
 */
public final class JobStateSerializer extends SerializerWithStringManifest {

  /** Pekko serializer id; fixed forever (it is stored next to every snapshot). */
  public static final int IDENTIFIER = 7404;

  static final String STATE = "S1";

  public JobStateSerializer(ExtendedActorSystem system) {}

  @Override
  public int identifier() {
    return IDENTIFIER;
  }

  @Override
  public String manifest(Object o) {
    if (o instanceof JobState) {
      return STATE;
    }
    throw new IllegalArgumentException("not a job state: " + o.getClass().getName());
  }

  @Override
  public byte[] toBinary(Object o) {
    JobStateSnapshot.Builder b = JobStateSnapshot.newBuilder();
    if (o instanceof JobState.Unsubmitted) {
      b.setPhase(JobStateSnapshot.Phase.UNSUBMITTED);
    } else if (o instanceof JobState.Active a) {
      b.setPhase(JobStateSnapshot.Phase.ACTIVE).setRunning(a.running()).setCourse(course(a.course()));
    } else if (o instanceof JobState.Ended e) {
      b.setPhase(JobStateSnapshot.Phase.ENDED).setOutcome(e.phase().name()).setTestAccuracy(e.testAccuracy())
          .setDigest(e.digest()).setMessage(e.message()).setCourse(course(e.course())).setEndedAtMillis(e.endedAtMillis());
    } else {
      throw new IllegalArgumentException("not a job state: " + o.getClass().getName());
    }
    return b.build().toByteArray();
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    if (!STATE.equals(manifest)) {
      throw new NotSerializableException("unknown job state manifest '" + manifest + "'");
    }
    try {
      JobStateSnapshot p = JobStateSnapshot.parseFrom(bytes);
      return switch (p.getPhase()) {
        case UNSUBMITTED -> new JobState.Unsubmitted();
        case ACTIVE -> new JobState.Active(course(p.getCourse()), p.getRunning());
        case ENDED -> {
          JobStatus.Phase outcome = outcome(p.getOutcome());
          yield new JobState.Ended(course(p.getCourse()), outcome, p.getTestAccuracy(), p.getDigest(), p.getMessage(),
              p.getEndedAtMillis());
        }
        case UNRECOGNIZED -> throw new NotSerializableException("job state of an unknown phase");
      };
    } catch (InvalidProtocolBufferException | IllegalArgumentException e) {
      // Bytes that parse but hold what no job state can (an unknown optimizer, a bad state source).
      throw new NotSerializableException("job state does not decode: " + e.getMessage());
    }
  }

  private static JobStatus.Phase outcome(String name) throws NotSerializableException {
    try {
      JobStatus.Phase phase = JobStatus.Phase.valueOf(name);
      if (phase.isTerminal()) {
        return phase;
      }
    } catch (IllegalArgumentException unknown) {
      // said below
    }
    throw new NotSerializableException("ended job state with outcome '" + name + "'");
  }

  private static JobCourse course(JobState.Course c) {
    JobCourse.Builder b = JobCourse.newBuilder()
        .setSpec(JobEventSerializer.spec(c.spec()))
        .setGeneration(c.generation())
        .setWorldSize(c.worldSize())
        .setStateSource(c.stateSource().toString())
        .setStepsDone(c.stepsDone())
        .setMinWorkers(c.minWorkers())
        .setMaxWorkers(c.maxWorkers())
        .addAllMembers(c.members())
        .setNextMember(c.nextMember())
        .setCreatedAtMillis(c.createdAtMillis())
        .setStartedAtMillis(c.startedAtMillis());
    c.epochs().forEach(m -> b.addEpochs(JobEventSerializer.epoch(m, m.stepsDone())));
    c.checkpoints().forEach(k -> b.addCheckpoints(JobEventSerializer.checkpoint(k)));
    c.history().forEach(g -> b.addHistory(GenerationStarted.newBuilder().setGeneration(g.generation())
        .setWorldSize(g.worldSize()).setResumeStep(g.resumeStep()).setReason(g.reason()).setStateSource(g.stateSource())
        .addAllMembers(g.members()).setAtMillis(g.atMillis())));
    return b.build();
  }

  private static JobState.Course course(JobCourse p) {
    List<GenerationInfo> history = p.getHistoryList().stream().map(g -> new GenerationInfo(g.getGeneration(), g.getWorldSize(),
        g.getResumeStep(), g.getReason(), g.getStateSource(), List.copyOf(g.getMembersList()), g.getAtMillis())).toList();
    // Snapshots written before the times were kept have neither. The first generation is recorded
    // with the submission, at its time, so a history that still starts with it knows both.
    long first = history.isEmpty() || history.get(0).generation() != 1 ? 0 : history.get(0).atMillis();
    return new JobState.Course(
        JobEventSerializer.spec(p.getSpec()),
        p.getGeneration(),
        p.getWorldSize(),
        StateSource.parse(p.getStateSource()),
        p.getEpochsList().stream().map(JobEventSerializer::epoch).toList(),
        p.getStepsDone(),
        p.getCheckpointsList().stream().map(JobEventSerializer::checkpoint).toList(),
        p.getMinWorkers(),
        p.getMaxWorkers(),
        List.copyOf(p.getMembersList()),
        p.getNextMember(),
        history,
        p.getCreatedAtMillis() != 0 ? p.getCreatedAtMillis() : first,
        p.getStartedAtMillis() != 0 ? p.getStartedAtMillis() : first);
  }
}
