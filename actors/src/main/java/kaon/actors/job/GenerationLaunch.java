package kaon.actors.job;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import kaon.actors.training.JobSpec;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Getting one generation of a job going: a short-lived child of the coordinator whose life is the
 * launch. Either it prepares a new generation (every rank takes a device and gets its replica
 * ready, then all get the ring together: the ready barrier), or, after the coordinator recovered,
 * it asks the ranks of the current generation whether they still train. It tells the coordinator
 * whether the generation is {@link Launched} and stops.
 *
 * <p>A Prepare sent to a rank whose shard sat on a node that has just died is lost; once that node
 * is downed, the same message reaches the shard's new home. So ranks that have not said they are
 * ready are asked again every {@code prepare-resend-interval}, {@code prepare-attempts} times; a
 * rank still silent then is given up on, and the job forms a generation without it. A re-attach
 * waits {@code reattach-timeout} for all ranks.
 */
final class GenerationLaunch {

  sealed interface Command permits Report, PrepareAgain, ReattachTimedOut {}

  /** A report of a rank of the generation, passed on by the coordinator. */
  record Report(WorkerReport report) implements Command {}

  private enum PrepareAgain implements Command { INSTANCE }

  private enum ReattachTimedOut implements Command { INSTANCE }

  /** How the launch ended. */
  sealed interface Outcome {
    long generation();
  }

  /** Every rank of {@code generation} trains. */
  record Launched(long generation) implements Outcome {}

  /** {@code generation} could not get going; the job forms another one for {@code reason}. */
  record NotLaunched(long generation, String reason) implements Outcome {}

  /**
   * A generation to prepare: its ranks' member ids in rank order, its spec, where its state comes
   * from (checkpoint id, or the members' memory with the rank that sends it), where ranks report.
   */
  record Generation(String jobId, JobSpec spec, long generation, List<Integer> members, long resumeStep,
      String checkpointId, boolean fromMembers, int sourceRank, int sourceBytes, ActorRef<WorkerReport> reportTo) {}

  private final ActorContext<Command> context;
  private final JobWorkers workers;
  private final Generation generation;
  private final ActorRef<Outcome> replyTo;
  private final Map<Integer, ActorRef<RingMessage>> ready = new TreeMap<>();
  private final Set<Integer> needState = new HashSet<>();

  private GenerationLaunch(ActorContext<Command> context, JobWorkers workers, Generation generation, ActorRef<Outcome> replyTo) {
    this.context = context;
    this.workers = workers;
    this.generation = generation;
    this.replyTo = replyTo;
  }

  /** Prepares {@code generation} and begins it once every rank is ready. */
  static Behavior<Command> prepare(Generation generation, JobWorkers workers, JobSettings settings, ActorRef<Outcome> replyTo) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
      timers.startTimerWithFixedDelay(PrepareAgain.INSTANCE, settings.prepareResendInterval());
      return new GenerationLaunch(context, workers, generation, replyTo).preparing(settings.prepareAttempts());
    }));
  }

  /** Asks the ranks {@code members} of {@code generation} whether they still train it. */
  static Behavior<Command> reattach(Generation generation, JobWorkers workers, JobSettings settings, ActorRef<Outcome> replyTo) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
      timers.startSingleTimer(ReattachTimedOut.INSTANCE, settings.reattachTimeout());
      return new GenerationLaunch(context, workers, generation, replyTo).reattaching();
    }));
  }

  private Behavior<Command> preparing(int attemptsLeft) {
    for (int rank = 0; rank < generation.members().size(); rank++) {
      if (!ready.containsKey(rank)) {
        rankAt(rank).tell(new DeviceWorker.Prepare(generation.jobId(), generation.spec(), generation.generation(), rank,
            generation.members().size(), generation.reportTo(), generation.checkpointId(), generation.resumeStep(),
            generation.fromMembers()));
      }
    }
    return Behaviors.receive(Command.class)
        .onMessage(Report.class, report -> report.report() instanceof WorkerReport.Ready r ? onReady(r) : Behaviors.same())
        .onMessage(PrepareAgain.class, again -> attemptsLeft > 0 ? preparing(attemptsLeft - 1) : notReady())
        .build();
  }

  private Behavior<Command> onReady(WorkerReport.Ready r) {
    if (r.generation() != generation.generation()) {
      return Behaviors.same();
    }
    ready.put(r.rank(), r.peer());
    if (r.needsState()) {
      needState.add(r.rank());
    } else {
      needState.remove(r.rank());
    }
    context.getLog().info("job {} generation {}: rank {} ready on {}{}", generation.jobId(), r.generation(), r.rank(),
        r.device(), r.needsState() ? " (its state comes from rank " + generation.sourceRank() + ")" : "");
    if (ready.size() < generation.members().size()) {
      return Behaviors.same();
    }
    List<ActorRef<RingMessage>> ring = new ArrayList<>(ready.values());
    // Every rank takes part in the state transfer (it is an all-reduce), or none does.
    int source = needState.isEmpty() ? -1 : generation.sourceRank();
    for (int rank = 0; rank < ring.size(); rank++) {
      rankAt(rank).tell(new DeviceWorker.Begin(generation.generation(), ring, source, generation.sourceBytes()));
    }
    replyTo.tell(new Launched(generation.generation()));
    return Behaviors.stopped();
  }

  private Behavior<Command> notReady() {
    List<Integer> missing = new ArrayList<>();
    for (int rank = 0; rank < generation.members().size(); rank++) {
      if (!ready.containsKey(rank)) {
        missing.add(rank);
      }
    }
    replyTo.tell(new NotLaunched(generation.generation(), "ranks " + missing + " did not get ready in time"));
    return Behaviors.stopped();
  }

  private Behavior<Command> reattaching() {
    for (int rank = 0; rank < generation.members().size(); rank++) {
      rankAt(rank).tell(new DeviceWorker.Reattach(generation.generation(), generation.reportTo()));
    }
    Set<Integer> training = new HashSet<>();
    long g = generation.generation();
    return Behaviors.receive(Command.class)
        .onMessage(Report.class, report -> {
          if (report.report() instanceof WorkerReport.Reattached r && r.generation() == g) {
            training.add(r.rank());
            if (training.size() == generation.members().size()) {
              context.getLog().info("job {}: all {} ranks of generation {} still train; carrying on", generation.jobId(),
                  training.size(), g);
              replyTo.tell(new Launched(g));
              return Behaviors.stopped();
            }
          } else if (report.report() instanceof WorkerReport.NotRunning n && n.generation() == g) {
            replyTo.tell(new NotLaunched(g, "rank " + n.rank() + " no longer trains generation " + g));
            return Behaviors.stopped();
          }
          return Behaviors.same();
        })
        .onMessage(ReattachTimedOut.class, timeout -> {
          replyTo.tell(new NotLaunched(g, "ranks of generation " + g + " did not answer after the coordinator recovered"));
          return Behaviors.stopped();
        })
        .build();
  }

  private RecipientRef<DeviceWorker.Command> rankAt(int rank) {
    return workers.member(generation.members().get(rank));
  }
}
