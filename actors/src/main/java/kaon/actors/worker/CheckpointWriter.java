package kaon.actors.worker;

import java.time.Duration;
import java.time.Instant;
import kaon.actors.chaos.RuntimeFaults;
import kaon.actors.checkpoint.CheckpointData;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.checkpoint.CheckpointStore;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Writes rank 0's checkpoints of one generation to the {@link CheckpointStore}, off the training
 * thread: a child of the worker, for as long as that generation is the worker's. One write at a
 * time; while one is in flight only the newest waiting checkpoint is kept (a newer one makes an
 * older one pointless). A failed write is retried with backoff, newest state first, while training
 * goes on.
 *
 * <p>It tells its parent each checkpoint {@link Written} (the parent reports it to the coordinator,
 * which commits it), and when writes start or stop failing ({@link Health}). Nothing survives a
 * crash: an unwritten checkpoint is lost with its worker, and the job resumes from the last one
 * committed, or from its survivors' memory.
 */
final class CheckpointWriter {

  /** What it accepts. */
  sealed interface Command permits Write, WriteDone, Retry {}

  /** A checkpoint to write. */
  record Write(CheckpointData data) implements Command {}

  private record WriteDone(CheckpointData data, CheckpointInfo info, String error) implements Command {}

  private enum Retry implements Command { INSTANCE }

  /** What it tells its parent. */
  sealed interface Outcome {
    long generation();
  }

  /** Checkpoint {@code info} of {@code generation} is durable: every chunk of it is written. */
  record Written(long generation, CheckpointInfo info) implements Outcome {}

  /** Writes fail ({@code problem} says since when and why), or, with an empty one, work again. */
  record Health(long generation, String problem) implements Outcome {}

  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;
  private final CheckpointStore store;
  private final long generation;
  private final ActorRef<Outcome> parent;
  private CheckpointData writing;
  private CheckpointData waiting;
  private Duration retryDelay;

  /** Writes the checkpoints of {@code generation} it is given, telling {@code parent}. */
  static Behavior<Command> create(CheckpointStore store, long generation, ActorRef<Outcome> parent) {
    return Behaviors.setup(context -> Behaviors.withTimers(
        timers -> new CheckpointWriter(context, timers, store, generation, parent).receiving()));
  }

  private CheckpointWriter(ActorContext<Command> context, TimerScheduler<Command> timers, CheckpointStore store,
      long generation, ActorRef<Outcome> parent) {
    this.context = context;
    this.timers = timers;
    this.store = store;
    this.generation = generation;
    this.parent = parent;
  }

  private Behavior<Command> receiving() {
    return Behaviors.receive(Command.class)
        .onMessage(Write.class, this::onWrite)
        .onMessage(WriteDone.class, this::onWriteDone)
        .onMessageEquals(Retry.INSTANCE, this::onRetry)
        .build();
  }

  private Behavior<Command> onWrite(Write write) {
    if (writing != null) {
      waiting = write.data();
    } else {
      write(write.data());
    }
    return Behaviors.same();
  }

  private void write(CheckpointData data) {
    writing = data;
    String refused = RuntimeFaults.get(context.getSystem()).checkpointWriteFailure(data.jobId());
    if (refused != null) {
      context.getSelf().tell(new WriteDone(data, null, refused));
      return;
    }
    context.pipeToSelf(store.write(data),
        (info, error) -> new WriteDone(data, info, error == null ? null : CheckpointStore.rootMessage(error)));
  }

  private Behavior<Command> onWriteDone(WriteDone done) {
    if (done.error() == null) {
      writing = null;
      if (retryDelay != null) {
        retryDelay = null;
        parent.tell(new Health(generation, ""));
      }
      parent.tell(new Written(generation, done.info()));
      if (waiting != null) {
        CheckpointData next = waiting;
        waiting = null;
        write(next);
      }
      return Behaviors.same();
    }
    kaon.actors.metrics.KaonMetrics.get(context.getSystem()).checkpointFailed("write");
    if (retryDelay == null) {
      parent.tell(new Health(generation, "checkpoint writes failing since " + Instant.now() + " (" + done.error()
          + "); retrying with backoff"));
      retryDelay = store.settings().retryMin();
    } else {
      Duration doubled = retryDelay.multipliedBy(2);
      retryDelay = doubled.compareTo(store.settings().retryMax()) < 0 ? doubled : store.settings().retryMax();
    }
    context.getLog().warn("checkpoint at step {} of generation {} not written ({}); retrying in {} ms",
        done.data().step(), generation, done.error(), retryDelay.toMillis());
    timers.startSingleTimer(Retry.INSTANCE, retryDelay);
    return Behaviors.same();
  }

  private Behavior<Command> onRetry() {
    // The newest state there is: a waiting checkpoint supersedes the failed one.
    CheckpointData next = waiting != null ? waiting : writing;
    waiting = null;
    write(next);
    return Behaviors.same();
  }
}
