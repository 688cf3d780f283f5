package kaon.actors.worker;

import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.SharedReduction;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * How a rank's buffer is summed with every other rank's buffer of the same step, waited for on
 * the training thread: through the generation's ring peer, or, when every rank runs in this JVM,
 * through memory they share. Either way the sum's bits are the same.
 */
interface Exchange {

  /**
   * Sums {@code buffer} in place with the other ranks' of {@code step}.
   *
   * @throws RingBrokenException when a rank missed its deadline or the generation was stopped
   */
  AllReducePeer.Reduced reduce(long step, float[] buffer) throws InterruptedException;

  /**
   * The ask to the peer only guards against a peer that vanished; the peer's own round deadline
   * (or its abort when the generation is stopped) is what ends a step, and it is always sooner.
   */
  Duration PEER_ASK_GUARD = Duration.ofMinutes(30);

  /** Through {@code peer}, the ring's end of rank {@code rank}. */
  static Exchange ring(ActorRef<RingMessage> peer, int rank, Scheduler scheduler) {
    return (step, buffer) -> {
      try {
        return AskPattern.<AllReducePeer.Command, AllReducePeer.Reduced>askWithStatus(peer.narrow(),
                replyTo -> new AllReducePeer.Reduce(step, buffer, replyTo), PEER_ASK_GUARD, scheduler)
            .toCompletableFuture()
            .get(PEER_ASK_GUARD.toMillis(), TimeUnit.MILLISECONDS);
      } catch (ExecutionException e) {
        throw new RingBrokenException(e.getCause().getMessage());
      } catch (TimeoutException e) {
        throw new RingBrokenException("all-reduce peer of rank " + rank + " did not answer");
      }
    };
  }

  /** Through {@code shared}, as rank {@code rank}. */
  static Exchange shared(SharedReduction shared, int rank) {
    return (step, buffer) -> {
      try {
        return shared.reduce(rank, step, buffer);
      } catch (SharedReduction.BrokenException e) {
        throw new RingBrokenException(e.getMessage());
      }
    };
  }

  /** The ring failed (a peer missed its deadline, or the generation was stopped): the job can go on. */
  final class RingBrokenException extends RuntimeException {
    RingBrokenException(String message) {
      super(message);
    }
  }
}
