package kaon.actors.worker;

import java.time.Duration;
import kaon.actors.checkpoint.CheckpointStore;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Stores the trained model of a job in the {@link CheckpointStore} for rank 0's worker, retrying
 * with backoff until it is stored. A child of the {@link DeviceWorker}, which reports its rank
 * finished only after {@link Stored}: a job succeeds only when every rank has reported, so a
 * succeeded job's model can be downloaded from any node, even after rank 0's node is gone.
 *
 * <p>Protocol: it starts writing at once; {@link Failing} tells the parent the first time a write
 * fails (the job's health shows it, since the job cannot finish meanwhile), and {@link Stored}
 * ends it. Nothing survives a crash: the generation dies with its worker, and the job's next
 * generation finishes, and stores the model, again.
 */
final class ModelWriter extends AbstractBehavior<ModelWriter.Command> {

  /** What it accepts: only its own write results and retry timer. */
  sealed interface Command permits WriteDone, Retry {}

  private record WriteDone(String error) implements Command {}

  private enum Retry implements Command { INSTANCE }

  /** What it tells its parent. */
  sealed interface Report permits Stored, Failing {}

  /** The model of {@code generation} is stored; {@code recovered} when writes had failed first. */
  record Stored(long generation, String digest, boolean recovered) implements Report {}

  /** Writes of the model of {@code generation} fail; {@code problem} says since when and why. */
  record Failing(long generation, String problem) implements Report {}

  private final TimerScheduler<Command> timers;
  private final CheckpointStore store;
  private final String jobId;
  private final long generation;
  private final String digest;
  private final byte[] model;
  private final ActorRef<Report> parent;
  private Duration retryDelay;

  /**
   * Stores {@code model} of {@code jobId} under {@code digest}, its sha256, and reports to {@code
   * parent}.
   */
  static Behavior<Command> create(
      CheckpointStore store, String jobId, long generation, String digest, byte[] model, ActorRef<Report> parent) {
    return Behaviors.setup(context -> Behaviors.withTimers(
        timers -> new ModelWriter(context, timers, store, jobId, generation, digest, model, parent)));
  }

  private ModelWriter(
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      CheckpointStore store,
      String jobId,
      long generation,
      String digest,
      byte[] model,
      ActorRef<Report> parent) {
    super(context);
    this.timers = timers;
    this.store = store;
    this.jobId = jobId;
    this.generation = generation;
    this.digest = digest;
    this.model = model;
    this.parent = parent;
    write();
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(WriteDone.class, this::onWriteDone)
        .onMessageEquals(Retry.INSTANCE, this::onRetry)
        .build();
  }

  private void write() {
    getContext().pipeToSelf(store.writeModel(jobId, model, digest),
        (stored, error) -> new WriteDone(error == null ? null : CheckpointStore.rootMessage(error)));
  }

  private Behavior<Command> onWriteDone(WriteDone done) {
    if (done.error() == null) {
      getContext().getLog().info("job {}: model {} stored ({} bytes)", jobId, digest, model.length);
      parent.tell(new Stored(generation, digest, retryDelay != null));
      return Behaviors.stopped();
    }
    if (retryDelay == null) {
      parent.tell(new Failing(generation, "storing the trained model failing since " + java.time.Instant.now() + " ("
          + done.error() + "); retrying with backoff"));
      retryDelay = store.settings().retryMin();
    } else {
      Duration doubled = retryDelay.multipliedBy(2);
      retryDelay = doubled.compareTo(store.settings().retryMax()) < 0 ? doubled : store.settings().retryMax();
    }
    getContext().getLog().warn("job {}: model not stored ({}); retrying in {} ms", jobId, done.error(), retryDelay.toMillis());
    timers.startSingleTimer(Retry.INSTANCE, retryDelay);
    return this;
  }

  private Behavior<Command> onRetry() {
    write();
    return this;
  }
}
