package kaon.actors.job;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import kaon.actors.checkpoint.CheckpointDamagedException;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.worker.DeviceCensus;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.DeviceWorker;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One survey before a job forms its next generation: a short-lived child of the coordinator whose
 * life is the survey. It stops the current members at a step boundary (they keep their state and
 * devices), asks each which step's state it holds, takes a device census, and when no member holds
 * state, finds the newest committed checkpoint that can be read (a damaged one is skipped for the
 * one before it). It tells the coordinator what it {@link Found} and stops.
 *
 * <p>Every wait is bounded: a member has {@code state-answer-timeout} to answer (the Stop just sent
 * aborts its all-reduce, so a live member answers within a step; one that stays silent is on a
 * node that is gone or going), the census {@code census-timeout}, and a checkpoint read the
 * store's request timeout.
 */
final class GenerationSurvey {

  sealed interface Command permits StateHeld, Counted, Chosen, Silent {}

  private record StateHeld(int member, DeviceWorker.HeldState held) implements Command {}

  private record Counted(List<DeviceCensus.NodeDevices> nodes) implements Command {}

  private record Chosen(Optional<CheckpointInfo> checkpoint, String skipped, Throwable error) implements Command {}

  /** The members that have not answered by now are taken to be silent (see {@link #ANSWER_FACTOR}). */
  private enum Silent implements Command { INSTANCE }

  /**
   * Once a member answered, the others are waited for this multiple of the time its answer took,
   * but at least {@link #ANSWER_FLOOR} plus {@link #ANSWER_FLOOR_PER_MEMBER} for each member (and
   * at most {@code state-answer-timeout}). Live members answer alike (each once its run has
   * stopped, within a step), so one that takes several times longer than the first is hung or cut
   * off: waiting the whole timeout for it was about half of a hung rank's recovery. The more
   * members, the wider their answers spread (their runs stop on shared cores, and one coordinator
   * takes the answers in turn): with a flat 200 ms, a job of 128 ranks on 8 busy nodes took 40 live
   * members for silent, formed without them, and needed two more generations (bench/scale).
   */
  private static final int ANSWER_FACTOR = 4;
  private static final Duration ANSWER_FLOOR = Duration.ofMillis(200);
  private static final Duration ANSWER_FLOOR_PER_MEMBER = Duration.ofMillis(20);

  /**
   * What the survey after generation {@code afterGeneration} found. {@code checkpoint} is the
   * newest readable one when the state must come from a checkpoint, {@code skipped} says which
   * were damaged, and {@code storeError} is set when the store could not be read at all.
   */
  record Found(long afterGeneration, String reason, GenerationPlanner.Survey survey, Optional<CheckpointInfo> checkpoint,
      String skipped, String storeError) {}

  /**
   * What to survey: the generation that ends, its members, and the job's bounds and checkpoints;
   * {@code lostMembers} run on {@code lostNodes}, whose processes were seen to end, and are not
   * waited for (they hold nothing any more, and the nodes no devices).
   */
  record Request(String jobId, long afterGeneration, String reason, List<Integer> members, int nextMember,
      int minWorkers, List<CheckpointInfo> checkpointsNewestFirst, Set<Integer> lostMembers, Set<String> lostNodes,
      long reportableThrough) {}

  private final ActorContext<Command> context;
  private final Request request;
  private final JobCheckpoints checkpoints;
  private final ActorRef<Found> replyTo;
  private final Map<Integer, GenerationPlanner.Held> held = new TreeMap<>();
  /** Members that answered, are lost, or were taken to be silent. */
  private final Set<Integer> answered = new HashSet<>();
  private final long startNanos = System.nanoTime();
  private final TimerScheduler<Command> timers;
  private List<DeviceCensus.NodeDevices> nodes;
  private boolean counted;
  private GenerationPlanner.Survey survey;

  static Behavior<Command> create(Request request, JobWorkers workers, JobCheckpoints checkpoints, JobSettings settings,
      ActorRef<Found> replyTo) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers ->
        new GenerationSurvey(context, timers, request, checkpoints, replyTo).start(workers, settings)));
  }

  private GenerationSurvey(ActorContext<Command> context, TimerScheduler<Command> timers, Request request,
      JobCheckpoints checkpoints, ActorRef<Found> replyTo) {
    this.context = context;
    this.timers = timers;
    this.request = request;
    this.checkpoints = checkpoints;
    this.replyTo = replyTo;
  }

  private Behavior<Command> start(JobWorkers workers, JobSettings settings) {
    long generation = request.afterGeneration();
    for (int member : request.members()) {
      workers.member(member).tell(new DeviceWorker.Stop(generation, "new generation: " + request.reason(), true));
      if (request.lostMembers().contains(member)) {
        answered.add(member); // its node's process ended: it holds nothing
        continue;
      }
      context.ask(DeviceWorker.HeldState.class, workers.member(member), settings.stateAnswerTimeout(),
          replyTo -> new DeviceWorker.AskState(generation, replyTo), (h, error) -> new StateHeld(member, h));
    }
    context.pipeToSelf(workers.census(request.lostNodes()), (found, error) -> {
      if (error != null) {
        // Counted as no devices: the job waits for devices and surveys again shortly.
        context.getLog().warn("job {}: device census failed: {}", request.jobId(), error.getMessage());
      }
      return new Counted(error == null ? found : null);
    });
    return Behaviors.receive(Command.class)
        .onMessage(StateHeld.class, this::onStateHeld)
        .onMessage(Counted.class, this::onCounted)
        .onMessage(Chosen.class, this::onChosen)
        .onMessage(Silent.class, silent -> onSilent())
        .build();
  }

  private Behavior<Command> onStateHeld(StateHeld answer) {
    if (survey != null) {
      return Behaviors.same(); // late: the survey is done
    }
    answered.add(answer.member());
    if (answer.held() != null) {
      held.put(answer.member(), new GenerationPlanner.Held(answer.held().step(), answer.held().bytes()));
      if (held.size() == 1 && answered.size() < request.members().size()) {
        Duration took = Duration.ofNanos(System.nanoTime() - startNanos);
        timers.startSingleTimer(Silent.INSTANCE, patience(took, request.members().size()));
      }
    }
    return surveyedYet();
  }

  /** How long the other members are waited for once the first answered after {@code took}. */
  static Duration patience(Duration took, int members) {
    Duration floor = ANSWER_FLOOR.plus(ANSWER_FLOOR_PER_MEMBER.multipliedBy(members));
    Duration scaled = took.multipliedBy(ANSWER_FACTOR);
    return scaled.compareTo(floor) > 0 ? scaled : floor;
  }

  private Behavior<Command> onSilent() {
    if (survey != null || answered.size() == request.members().size()) {
      return Behaviors.same();
    }
    List<Integer> silent = request.members().stream().filter(m -> !answered.contains(m)).toList();
    context.getLog().warn("job {}: members {} did not answer within {} times the first answer's time (at least {} ms"
        + " for {} members); forming without them", request.jobId(), silent, ANSWER_FACTOR,
        patience(Duration.ZERO, request.members().size()).toMillis(), request.members().size());
    answered.addAll(silent);
    return surveyedYet();
  }

  private Behavior<Command> onCounted(Counted census) {
    counted = true;
    nodes = census.nodes();
    return surveyedYet();
  }

  private Behavior<Command> surveyedYet() {
    if (!counted || answered.size() < request.members().size()) {
      return Behaviors.same();
    }
    survey = survey();
    // Members that hold state past the end of an epoch without a result: a checkpoint at or
    // before that end lets the next generation report it (GenerationPlanner.reportableThrough).
    List<CheckpointInfo> candidates = survey.needsCheckpoint() ? request.checkpointsNewestFirst()
        : survey.newestHeldStep() > request.reportableThrough()
            ? request.checkpointsNewestFirst().stream().filter(c -> c.step() <= request.reportableThrough()).toList()
            : List.of();
    if (survey.available() >= request.minWorkers() && !candidates.isEmpty()) {
      context.pipeToSelf(choose(candidates, 0, ""), (chosen, error) -> chosen != null
          ? chosen
          : new Chosen(Optional.empty(), "", error instanceof CompletionException c && c.getCause() != null ? c.getCause() : error));
      return Behaviors.same();
    }
    return found(survey, Optional.empty(), "", null);
  }

  private Behavior<Command> onChosen(Chosen chosen) {
    return found(survey, chosen.checkpoint(), chosen.skipped(),
        chosen.error() == null ? null : String.valueOf(chosen.error().getMessage()));
  }

  private Behavior<Command> found(GenerationPlanner.Survey survey, Optional<CheckpointInfo> checkpoint, String skipped,
      String storeError) {
    replyTo.tell(new Found(request.afterGeneration(), request.reason(), survey, checkpoint, skipped, storeError));
    return Behaviors.stopped();
  }

  /**
   * Devices a generation of job {@code jobId} can have, from a census ({@code nodes}; none when it
   * failed): the free ones and those its own workers hold, which they keep between generations.
   */
  static int availableTo(String jobId, List<DeviceCensus.NodeDevices> nodes) {
    String prefix = WorkerEntity.entityIdPrefix(jobId);
    return nodes == null ? 0 : nodes.stream().mapToInt(n -> n.available(owner -> owner.startsWith(prefix))).sum();
  }

  /** What was found, as values: devices this job can have, which members own one, what each holds. */
  private GenerationPlanner.Survey survey() {
    Set<String> owners = new HashSet<>();
    if (nodes != null) {
      nodes.forEach(node -> owners.addAll(node.owners()));
    }
    Set<Integer> owning = new HashSet<>();
    for (int member : request.members()) {
      // A member that holds state holds its device too (they stay together between generations),
      // whatever the census heard from its node's agent in time.
      GenerationPlanner.Held state = held.get(member);
      if (owners.contains(WorkerEntity.entityId(request.jobId(), member)) || state != null && state.step() >= 0) {
        owning.add(member);
      }
    }
    // Devices of members whose agent the census did not hear in time are the job's all the same.
    int available = availableTo(request.jobId(), nodes)
        + (int) owning.stream().filter(m -> !owners.contains(WorkerEntity.entityId(request.jobId(), m))).count();
    List<Integer> orphans = orphans(request.jobId(), owners, request.members());
    if (!orphans.isEmpty()) {
      context.getLog().warn("job {}: workers {} own devices but are in no generation; the next one takes them", request.jobId(),
          orphans);
    }
    List<String> states = new ArrayList<>();
    held.forEach((id, h) -> states.add("worker-" + id + (h.step() < 0 ? " none" : " step " + h.step())));
    context.getLog().info("job {}: {} devices available to it on {} nodes; states held: {}", request.jobId(), available,
        nodes == null ? 0 : nodes.size(), states.isEmpty() ? "none" : String.join(", ", states));
    return new GenerationPlanner.Survey(request.members(), request.nextMember(), available, owning, held, orphans);
  }

  /**
   * The workers of job {@code jobId} among device {@code owners} (entity ids) that are not {@code
   * members}, in id order: a generation that dropped them could not tell them to give their
   * devices back (it was cut off from them), and they hold those devices until someone does.
   */
  static List<Integer> orphans(String jobId, Set<String> owners, List<Integer> members) {
    String prefix = WorkerEntity.entityIdPrefix(jobId);
    List<Integer> orphans = new ArrayList<>();
    for (String owner : owners) {
      if (owner.startsWith(prefix)) {
        try {
          int id = Integer.parseInt(owner.substring(prefix.length()));
          if (!members.contains(id)) {
            orphans.add(id);
          }
        } catch (NumberFormatException notAWorker) {
          // another job whose id extends this one's ("job-worker-7-x"): not ours
        }
      }
    }
    orphans.sort(null);
    return orphans;
  }

  /** The first of {@code candidates} from {@code index} on that reads back whole. */
  private CompletionStage<Chosen> choose(List<CheckpointInfo> candidates, int index, String skipped) {
    if (index >= candidates.size()) {
      return CompletableFuture.completedFuture(new Chosen(Optional.empty(), skipped, null));
    }
    CheckpointInfo candidate = candidates.get(index);
    return checkpoints.verify(candidate)
        .thenApply(data -> new Chosen(Optional.of(candidate), skipped, null))
        .exceptionallyCompose(error -> {
          Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
          if (cause instanceof CheckpointDamagedException) {
            return choose(candidates, index + 1, skipped + cause.getMessage() + "; ");
          }
          return CompletableFuture.failedFuture(cause);
        });
  }
}

