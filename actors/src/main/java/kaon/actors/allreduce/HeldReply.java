package kaon.actors.allreduce;

import java.time.Duration;
import kaon.protocol.LentBuffer;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The reply of a completed round, held while its buffer may still be read for sending. Across
 * JVMs nothing is copied: the link's writer, or Artery's serializer (a {@link LentBuffer}), reads
 * each chunk out of the buffer itself, and the caller may write into the buffer as soon as it has
 * the reply. So the reply waits until every chunk was written, and at most {@code
 * min-round-timeout}: then the link is closed, or the buffer withdrawn from Artery, and the
 * neighbour, short of those chunks, misses its own deadline (the sums here are complete).
 *
 * <p>Plain state of one {@link AllReducePeer}, used on its thread; the peer passes on the
 * messages below.
 */
final class HeldReply {

  /** Artery wrote the last region lent for the round of {@code step}. */
  record LentWritten(long step) implements RingMessage {}

  /** The reply of the round of {@code step} waited {@code min-round-timeout}. */
  record DrainTimedOut(long step) implements RingMessage {}

  private final ActorContext<RingMessage> context;
  private final TimerScheduler<RingMessage> timers;
  private final RingEdge edge;
  private final Duration drainTimeout;
  private final String who;
  /** The reply, while held; else null. */
  private Runnable reply;
  private long step;
  /** The round's regions that Artery may still have to write, while its reply is held. */
  private LentBuffer lent;

  /** Held replies of the peer whose {@code context} it is; {@code who} names it in the logs. */
  HeldReply(ActorContext<RingMessage> context, TimerScheduler<RingMessage> timers, RingEdge edge, Duration drainTimeout,
      String who) {
    this.context = context;
    this.timers = timers;
    this.edge = edge;
    this.drainTimeout = drainTimeout;
    this.who = who;
  }

  /** Whether a reply is held: the next round must wait. */
  boolean held() {
    return reply != null;
  }

  /** Sends {@code reply} of the round of {@code step} once nothing reads its buffer, whose Artery regions are {@code lent}. */
  void hold(long step, Runnable reply, LentBuffer lent) {
    this.step = step;
    this.reply = reply;
    this.lent = lent;
    if (drained()) {
      send();
    } else {
      timers.startSingleTimer(DrainTimedOut.class, new DrainTimedOut(step), drainTimeout);
    }
  }

  /** Something that read the buffer may be done: sends the reply if nothing reads it any more. */
  void recheck() {
    if (reply != null && drained()) {
      send();
    }
  }

  void onLentWritten(LentWritten written) {
    if (written.step() == step) {
      recheck();
    }
  }

  void onDrainTimedOut(DrainTimedOut timeout) {
    if (reply != null && lent != null && lent.unwritten() > 0) {
      // Artery has not serialized them in all this time: its connection is gone or stuck.
      context.getLog().warn("{} withdraws {} chunks of step {} that Artery did not write in {} ms", who, lent.unwritten(),
          timeout.step(), drainTimeout.toMillis());
      lent.withdraw();
      lent = null;
      recheck();
    }
    if (reply != null) {
      edge.unstick(timeout.step());
    }
  }

  /** The peer stops: regions lent to Artery will not be written now. */
  void withdraw() {
    if (lent != null) {
      lent.withdraw();
    }
  }

  /**
   * Whether nothing reads the held round's buffer any more; if something does, it says so when
   * done (a {@link LinkSender.Drained}, or a {@link LentWritten}).
   */
  private boolean drained() {
    boolean linkDone = edge.linkDone();
    if (lent == null) {
      return linkDone;
    }
    long heldStep = step;
    ActorRef<RingMessage> self = context.getSelf();
    return lent.whenWritten(() -> self.tell(new LentWritten(heldStep))) && linkDone;
  }

  private void send() {
    timers.cancel(DrainTimedOut.class);
    lent = null;
    Runnable held = reply;
    reply = null;
    held.run();
  }
}
