package kaon.actors.worker;

import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * A worker's way out of memory, and what it does with work that comes after it asked to leave.
 * Sharding stops a worker some time after it asks to be passivated, and holds the messages that
 * reach the shard meanwhile for the worker's next incarnation; but a message already in the
 * worker's mailbox is the worker's own. A spare worker asks to leave as soon as it has answered
 * where it stands, and a generation that grows onto the node it was placed on sends it a Prepare
 * at that very moment: taken, it was lost with the stopped worker, whose device was granted and
 * given back at once, and the generation waited for the Prepare's resend (3 s of a node's join in
 * bench/recovery). Such a Prepare is handed back to sharding instead, which delivers it to the
 * next incarnation, a moment later.
 */
final class Passivation<M> {

  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final ActorRef<M> self;
  /** Sends a message to this worker's entity through sharding (its next incarnation, once stopped). */
  private final Consumer<M> throughSharding;
  private boolean asked;

  /** For the entity {@code self}; generic in its messages, so that it needs nothing of the worker's. */
  Passivation(ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<M> self, Consumer<M> throughSharding) {
    this.shard = shard;
    this.self = self;
    this.throughSharding = throughSharding;
  }

  /** Asks sharding to stop this worker (once). */
  void ask() {
    if (!asked) {
      asked = true;
      shard.tell(new ClusterSharding.Passivate<>(self));
    }
  }

  /** True when {@code work} (a Prepare) came after the worker asked to leave, and went back to sharding. */
  boolean handedBack(M work) {
    if (asked) {
      throughSharding.accept(work);
    }
    return asked;
  }
}
