package kaon.actors.job;

import java.time.Duration;
import java.util.List;
import kaon.actors.worker.DeviceCensus;
import kaon.actors.worker.DeviceWorker;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Readies the cluster for the loss of one of a training generation's ranks: while a node has a
 * free device, the worker the next generation would add ({@code nextMember}) is started there now
 * and stands by, and every node with a free device warms the job's task ({@link
 * kaon.actors.worker.TaskWarmup}). One child per generation that trains, and again when a node
 * joins; it ends once the spare answered.
 *
 * <p>Starting the spare places its shard: sharding asks its coordinator where a new shard lives,
 * and that coordinator is a singleton on the cluster's oldest node. When that node is the one
 * lost, the singleton moves only after the node is removed (the removal margin) and has read its
 * state back: the chaos suite's kill of its first node took 3.8 s from the kill to the replacing
 * rank's allocation. A shard placed beforehand is known to every region that sent to it, so the
 * replacing rank needs no coordinator, and it lands on a node that has the task loaded. The
 * spare owns no device until a generation prepares it: an idle worker that no generation asked
 * for passivates at once, and its shard stays where it was placed. Should the device it stood by
 * for be taken meanwhile, the allocation strategy moves it to a node that has one free.
 */
final class SpareRank {

  /** Long enough for an allocation that waits for a device, and the spare's answer. */
  private static final Duration ANSWER = Duration.ofSeconds(15);
  /**
   * How often and how many times it looks for a free device before it gives up: a node that just
   * joined may start its agent a moment after it is up, and workers a new generation left out give
   * their devices back a moment after it starts.
   */
  private static final Duration LOOK_AGAIN = Duration.ofSeconds(2);
  private static final int LOOKS = 5;

  private final ActorContext<Message> context;
  private final TimerScheduler<Message> timers;
  private final String jobId;
  private final long generation;
  private final int spareMember;
  private final JobWorkers workers;

  private SpareRank(ActorContext<Message> context, TimerScheduler<Message> timers, String jobId, long generation,
      int spareMember, JobWorkers workers) {
    this.context = context;
    this.timers = timers;
    this.jobId = jobId;
    this.generation = generation;
    this.spareMember = spareMember;
    this.workers = workers;
  }

  sealed interface Message permits Counted, Look, Answered {}

  private record Counted(List<DeviceCensus.NodeDevices> nodes) implements Message {}

  private enum Look implements Message { AGAIN }

  private record Answered(boolean ok) implements Message {}

  /** Stands {@code spareMember} by for {@code generation}, warming {@code task}, if a device is free. */
  static Behavior<Message> create(String jobId, long generation, String task, int spareMember, JobWorkers workers) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
      workers.warm(task);
      return new SpareRank(context, timers, jobId, generation, spareMember, workers).looking(1);
    }));
  }

  /** Look {@code look} of {@link #LOOKS} for a free device. */
  private Behavior<Message> looking(int look) {
    context.pipeToSelf(workers.census(), (nodes, error) -> new Counted(error == null ? nodes : List.of()));
    return Behaviors.receive(Message.class)
        .onMessage(Counted.class, counted -> {
          if (anyFree(counted.nodes())) {
            context.ask(DeviceWorker.HeldState.class, workers.member(spareMember), ANSWER,
                replyTo -> new DeviceWorker.AskState(generation, replyTo), (held, error) -> new Answered(error == null));
            return answering();
          }
          if (look == LOOKS) {
            return Behaviors.stopped(); // nowhere to stand by: a lost rank waits for a device anyway
          }
          timers.startSingleTimer(Look.AGAIN, LOOK_AGAIN);
          return Behaviors.same();
        })
        .onMessage(Look.class, again -> looking(look + 1))
        .build();
  }

  private Behavior<Message> answering() {
    return Behaviors.receive(Message.class)
        .onMessage(Answered.class, answered -> {
          log(answered.ok());
          return Behaviors.stopped();
        })
        .build();
  }

  /** Whether some node has a device nobody owns. */
  static boolean anyFree(List<DeviceCensus.NodeDevices> nodes) {
    return nodes.stream().anyMatch(n -> n.free() > 0);
  }

  private void log(boolean ok) {
    if (ok) {
      context.getLog().info("job {} generation {}: worker {} stands by as a spare, for a rank the job may lose", jobId,
          generation, spareMember);
    } else {
      context.getLog().info("job {} generation {}: spare worker {} did not answer within {} s; a lost rank is placed"
          + " when it is lost", jobId, generation, spareMember, ANSWER.toSeconds());
    }
  }
}
