package kaon.actors.worker;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.pattern.Patterns;

/**
 * The devices of the whole cluster and their owners, asked of the {@link NodeAgent} of every
 * worker node that is up. A node that does not answer in time counts with no devices: an
 * unreachable node has none to give.
 *
 * <p>The agents are found from the membership, at their known path ({@link NodeAgent#on}), not
 * through the receptionist: its listing learns of a new node's agent by Distributed Data, which
 * drops what a node sends before it sees that node up and repeats it only at its next full gossip
 * (2 s). A growing job waited that long to see a node that had joined (bench/recovery, join).
 *
 * <p>An agent answers from memory in milliseconds, so each is given {@link #AGENT_ANSWER} at most
 * (tens of times a slow answer on a busy machine): a census taken right after a node hung or died
 * (before the cluster marks it unreachable, it is still up) must not wait the caller's whole
 * timeout for it; that wait was most of a lost worker's recovery time. A job's survey counts its
 * members' devices from their own answers as well, so an agent heard too late hides only free
 * devices, which the job's growth finds later.
 */
public final class DeviceCensus {

  /** One node's devices. */
  public record NodeDevices(Address node, List<NodeAgent.DeviceOwnership> devices) {
    /** Devices nobody owns, or owned by an owner {@code releasing} says is about to let go. */
    public int available(java.util.function.Predicate<String> releasing) {
      return (int) devices.stream().filter(d -> d.owner().isEmpty() || releasing.test(d.owner())).count();
    }

    /** Devices nobody owns. */
    public int free() {
      return available(owner -> false);
    }

    /** The owners of this node's devices. */
    public java.util.Set<String> owners() {
      java.util.Set<String> owners = new java.util.HashSet<>();
      devices.forEach(d -> {
        if (!d.owner().isEmpty()) {
          owners.add(d.owner());
        }
      });
      return owners;
    }
  }

  private static final Duration AGENT_ANSWER = Duration.ofMillis(500);

  private DeviceCensus() {}

  /** Every node's devices, asked now. */
  public static CompletionStage<List<NodeDevices>> take(ActorSystem<?> system, Duration timeout) {
    return take(system, timeout, Set.of());
  }

  /**
   * Every node's devices, asked now, but those of {@code lostNodes} (addresses): their processes
   * were seen to end, so they count with none, without waiting for their agents' silence.
   */
  public static CompletionStage<List<NodeDevices>> take(ActorSystem<?> system, Duration timeout, Set<String> lostNodes) {
    Duration wait = timeout.compareTo(AGENT_ANSWER) < 0 ? timeout : AGENT_ANSWER;
    List<CompletableFuture<NodeDevices>> perNode = new ArrayList<>();
    for (Address node : NodeAgent.workerNodes(system, Set.of(MemberStatus.up(), MemberStatus.weaklyUp()))) {
      if (lostNodes.contains(node.toString())) {
        perNode.add(CompletableFuture.completedFuture(new NodeDevices(node, List.of())));
        continue;
      }
      perNode.add(Patterns.askWithReplyTo(NodeAgent.on(system, node),
              replyTo -> new NodeAgent.ListDevices(Adapter.toTyped(replyTo)), wait)
          .thenApply(answer -> new NodeDevices(node, ((NodeAgent.Devices) answer).devices()))
          .exceptionally(e -> new NodeDevices(node, List.of()))
          .toCompletableFuture());
    }
    return CompletableFuture.allOf(perNode.toArray(CompletableFuture[]::new))
        .thenApply(x -> perNode.stream().map(CompletableFuture::join).toList());
  }
}
