package kaon.actors.job;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import kaon.actors.checkpoint.CheckpointInfo;

/**
 * Who forms a job's next generation and where its state comes from: a pure function of what the
 * survey found, in the way torchft keeps its quorum computation a function of values.
 *
 * <p>The rules, each with its own test in {@code GenerationPlannerTest}:
 * <ul>
 *   <li>the generation has as many ranks as there are devices for the job (free ones and those its
 *       own workers hold), at most its maximum; below its minimum it waits for devices;
 *   <li>its state is the newest any member holds in memory; only when no member holds any does it
 *       come from the newest checkpoint that can be read, else from the initial parameters;
 *   <li>members are the current workers that still own a device, those holding the newest state
 *       first (so that a smaller generation keeps them), then the job's orphans (workers that own
 *       a device but are in no generation any more: the generation that dropped them could not
 *       tell them, a partition in between), then new member ids; a member that owns a device but
 *       did not answer in time is slow, not gone: it stays and receives the state; an orphan's
 *       state is never used, being older than what the generations after it committed;
 *   <li>the rank that sends the state is the first that holds it.
 * </ul>
 */
final class GenerationPlanner {

  private GenerationPlanner() {}

  /**
   * What the survey of the current generation found.
   *
   * @param members the current generation's members, in rank order
   * @param nextMember the lowest member id never used
   * @param available devices this job can have (0 when the census failed)
   * @param owningDevice members that own a device now
   * @param held per member that answered in time, the step it holds (-1: none) and its size
   * @param orphans the job's workers that own a device but are not members (in id order)
   */
  record Survey(List<Integer> members, int nextMember, int available, Set<Integer> owningDevice,
      Map<Integer, Held> held, List<Integer> orphans) {

    Survey {
      members = List.copyOf(members);
      owningDevice = Set.copyOf(owningDevice);
      held = Map.copyOf(held);
      orphans = List.copyOf(orphans);
    }

    /** A survey that found no orphans. */
    Survey(List<Integer> members, int nextMember, int available, Set<Integer> owningDevice, Map<Integer, Held> held) {
      this(members, nextMember, available, owningDevice, held, List.of());
    }

    /**
     * The newest step a member that still owns a device holds, or -1. (The state goes with the
     * device: one that gave its device back since it answered holds nothing any more.)
     */
    long newestHeldStep() {
      return held.entrySet().stream().filter(e -> owningDevice.contains(e.getKey()))
          .mapToLong(e -> e.getValue().step()).max().orElse(-1);
    }

    /** Whether the state must come from a checkpoint (no member holds any past step 0). */
    boolean needsCheckpoint() {
      return newestHeldStep() <= 0;
    }
  }

  /** The state a member holds: step {@code step} (-1: none), {@code bytes} encoded. */
  record Held(long step, int bytes) {}

  /** What to do. */
  sealed interface Plan {}

  /** Too few devices: wait for more, and say why. */
  record Wait(String reason) implements Plan {}

  /**
   * Form a generation of {@code members} (in rank order) resuming at {@code resumeStep} from
   * {@code source}; {@code sourceRank} sends its {@code sourceBytes} of state to the others when
   * the state comes from memory (else -1).
   */
  record Form(List<Integer> members, long resumeStep, StateSource source, int sourceRank, int sourceBytes)
      implements Plan {}

  /**
   * The plan for a job with bounds {@code minWorkers..maxWorkers} after {@code survey}; {@code
   * checkpoint} is the newest readable one, asked for only when {@link Survey#needsCheckpoint}.
   * Workers are named by {@code entityIdOf} (their member id to their entity id).
   */
  static Plan plan(Survey survey, int minWorkers, int maxWorkers, Optional<CheckpointInfo> checkpoint,
      java.util.function.IntFunction<String> entityIdOf) {
    return plan(survey, minWorkers, maxWorkers, checkpoint, entityIdOf, Long.MAX_VALUE);
  }

  /**
   * As above, where no state past step {@code reportableThrough} may be resumed from when {@code
   * checkpoint} is at or before it ({@link #reportableThrough}): the members' states are then
   * past the end of an epoch without a result, and only training that end again reports it.
   */
  static Plan plan(Survey survey, int minWorkers, int maxWorkers, Optional<CheckpointInfo> checkpoint,
      java.util.function.IntFunction<String> entityIdOf, long reportableThrough) {
    int size = Math.min(maxWorkers, survey.available());
    if (size < minWorkers) {
      return new Wait("waiting for devices: " + survey.available() + " available, needs at least " + minWorkers);
    }
    long newest = survey.newestHeldStep();
    boolean pastUnreported = newest > reportableThrough && checkpoint.filter(c -> c.step() <= reportableThrough).isPresent();
    boolean fromMembers = newest > 0 && !pastUnreported;
    List<Integer> members = members(survey, newest, size);
    if (!fromMembers) {
      return new Form(members, checkpoint.map(CheckpointInfo::step).orElse(0L),
          checkpoint.<StateSource>map(c -> new StateSource.Checkpoint(c.id())).orElse(StateSource.INIT), -1, 0);
    }
    for (int rank = 0; rank < members.size(); rank++) {
      Held h = survey.held().get(members.get(rank));
      if (h != null && h.step() == newest) {
        return new Form(members, newest, new StateSource.Memory(entityIdOf.apply(members.get(rank))), rank, h.bytes());
      }
    }
    throw new IllegalStateException("no member of " + members + " holds step " + newest);
  }

  /**
   * The last step a generation may resume from without leaving an epoch unreported: the end of the
   * first of the job's {@code epochs} with no recorded result and none {@code waiting} for the
   * journal, or {@link Long#MAX_VALUE} when there is none or the length of an epoch is not known
   * yet (no epoch recorded). An epoch's result is the sum of every rank's report within one
   * generation: when a rank's report is lost with it (its node, or the coordinator's, died at the
   * epoch's end), the survivors' states are past that end and no later generation would report it.
   */
  static long reportableThrough(List<kaon.actors.job.EpochMetrics> recorded, java.util.function.IntPredicate waiting,
      int epochs) {
    if (recorded.isEmpty() || recorded.get(0).epoch() <= 0) {
      return Long.MAX_VALUE;
    }
    long perEpoch = recorded.get(0).stepsDone() / recorded.get(0).epoch();
    Set<Integer> done = new java.util.HashSet<>();
    recorded.forEach(m -> done.add(m.epoch()));
    for (int epoch = 1; epoch <= epochs && perEpoch > 0; epoch++) {
      if (!done.contains(epoch) && !waiting.test(epoch)) {
        return epoch * perEpoch;
      }
    }
    return Long.MAX_VALUE;
  }

  private static List<Integer> members(Survey survey, long newestStep, int size) {
    List<Integer> holding = new ArrayList<>();
    List<Integer> others = new ArrayList<>();
    for (int id : survey.members()) {
      if (!survey.owningDevice().contains(id)) {
        continue; // gone with its node, or it gave its device back
      }
      Held h = survey.held().get(id);
      (h != null && h.step() == newestStep && newestStep > 0 ? holding : others).add(id);
    }
    List<Integer> members = new ArrayList<>(holding);
    members.addAll(others);
    members.addAll(survey.orphans());
    while (members.size() > size) {
      members.remove(members.size() - 1);
    }
    for (int next = survey.nextMember(); members.size() < size; next++) {
      members.add(next);
    }
    return List.copyOf(members);
  }
}
