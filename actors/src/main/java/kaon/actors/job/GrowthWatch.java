package kaon.actors.job;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Looks for devices a job below its maximum can grow onto: a child of the coordinator that lives
 * as long as one generation below its maximum, at the pace of the {@link GrowthPolicy}. Each time
 * a census shows more devices than the generation has, it tells the coordinator to {@link Grow};
 * whether the job grows now (it does only while it trains) is the coordinator's call.
 */
final class GrowthWatch {

  sealed interface Command permits NodeUp, Look, Counted {}

  /** A node joined the cluster (passed on by the coordinator, which subscribes once for its life). */
  record NodeUp(String address) implements Command {}

  private enum Look implements Command { INSTANCE }

  private record Counted(int available) implements Command {}

  /** Generation {@code generation} could have {@code target} ranks. */
  record Grow(long generation, int target, String reason) {}

  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;
  private final String jobId;
  private final long generation;
  private final int worldSize;
  private final int maxWorkers;
  private final JobWorkers workers;
  private final GrowthPolicy policy;
  private final ActorRef<Grow> replyTo;
  private int fastLooksLeft;
  private Optional<Duration> lookingEvery = Optional.empty();

  /** Watches for devices for {@code generation} of {@code worldSize} ranks, at most {@code maxWorkers}. */
  static Behavior<Command> create(String jobId, long generation, int worldSize, int maxWorkers, JobWorkers workers,
      GrowthPolicy policy, ActorRef<Grow> replyTo) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
      GrowthWatch watch = new GrowthWatch(context, timers, jobId, generation, worldSize, maxWorkers, workers, policy, replyTo);
      watch.pace();
      return watch.watching();
    }));
  }

  private GrowthWatch(ActorContext<Command> context, TimerScheduler<Command> timers, String jobId, long generation,
      int worldSize, int maxWorkers, JobWorkers workers, GrowthPolicy policy, ActorRef<Grow> replyTo) {
    this.context = context;
    this.timers = timers;
    this.jobId = jobId;
    this.generation = generation;
    this.worldSize = worldSize;
    this.maxWorkers = maxWorkers;
    this.workers = workers;
    this.policy = policy;
    this.replyTo = replyTo;
  }

  private Behavior<Command> watching() {
    return Behaviors.receive(Command.class)
        .onMessage(NodeUp.class, up -> {
          context.getLog().info("job {}: node {} joined; growing if it brings devices", jobId, up.address());
          fastLooksLeft = policy.fastLooks();
          pace();
          // At once too: the node's agent may already be listed (a node that was quick to start,
          // or one that had joined before), and the first timed look is an interval away.
          context.getSelf().tell(Look.INSTANCE);
          return Behaviors.same();
        })
        .onMessage(Look.class, look -> {
          if (fastLooksLeft > 0 && --fastLooksLeft == 0) {
            pace();
          }
          context.pipeToSelf(workers.census(), (nodes, error) -> new Counted(GenerationSurvey.availableTo(jobId, nodes)));
          return Behaviors.same();
        })
        .onMessage(Counted.class, counted -> {
          OptionalInt target = policy.growTo(counted.available(), worldSize, maxWorkers);
          if (target.isPresent()) {
            replyTo.tell(new Grow(generation, target.getAsInt(),
                "growing from " + worldSize + " to " + target.getAsInt() + " ranks: devices free"));
          }
          return Behaviors.same();
        })
        .build();
  }

  private void pace() {
    Optional<Duration> every = policy.lookEvery(true, worldSize, maxWorkers, fastLooksLeft);
    if (every.isEmpty()) {
      timers.cancel(Look.INSTANCE);
    } else if (!every.equals(lookingEvery)) {
      timers.startTimerWithFixedDelay(Look.INSTANCE, every.get());
    }
    lookingEvery = every;
  }
}
