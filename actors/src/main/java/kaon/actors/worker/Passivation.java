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
final class Passivation {

  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final ActorRef<DeviceWorker.Command> self;
  /** Sends a message to this worker's entity through sharding (its next incarnation, once stopped). */
  private final Consumer<DeviceWorker.Prepare> throughSharding;
  private boolean asked;

  Passivation(ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<DeviceWorker.Command> self,
      Consumer<DeviceWorker.Prepare> throughSharding) {
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

  /** True when {@code prepare} came after the worker asked to leave, and went back to sharding. */
  boolean handedBack(DeviceWorker.Prepare prepare) {
    if (asked) {
      throughSharding.accept(prepare);
    }
    return asked;
  }
}
