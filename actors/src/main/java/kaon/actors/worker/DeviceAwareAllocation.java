package kaon.actors.worker;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.dispatch.Futures;
import scala.collection.immutable.IndexedSeq;
import scala.concurrent.Future;

/**
 * Places each worker (one shard per job rank) on a node that has a free device: a worker runs
 * only where it can own a device, and never two on one device. Sharding's default strategies
 * balance shard counts and know nothing of devices.
 *
 * <p>Free devices come from every node's {@link NodeAgent} at the time of the allocation, minus
 * the allocations this strategy made in the last few seconds whose workers have not taken their
 * device yet (several ranks of a job are allocated at once). When no node has a free device the
 * least loaded one gets the worker anyway; its {@link NodeAgent} then refuses it a device and the
 * job hears why. Workers are never rebalanced: moving one means restarting its rank.
 */
public final class DeviceAwareAllocation extends ShardCoordinator.AbstractShardAllocationStrategy {

  /** Long enough for an allocated worker to start and take its device. */
  private static final Duration RESERVATION = Duration.ofSeconds(10);
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);

  private final ActorSystem<?> system;
  private final Map<Address, Deque<Long>> reservations = new HashMap<>();

  public DeviceAwareAllocation(org.apache.pekko.actor.ActorSystem system) {
    this.system = Adapter.toTyped(system);
  }

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    CompletionStage<ActorRef> choice = freeDevicesByNode().thenApply(free -> choose(free, current));
    return scala.jdk.javaapi.FutureConverters.asScala(choice);
  }

  @Override
  public Future<Set<String>> rebalance(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    return Futures.successful(Collections.emptySet());
  }

  /** Runs on the thread that completed the device query: synchronized guards the reservations. */
  private synchronized ActorRef choose(Map<Address, Integer> free, Map<ActorRef, IndexedSeq<String>> regions) {
    long now = System.nanoTime();
    ActorRef best = null;
    int bestFree = Integer.MIN_VALUE;
    List<ActorRef> ordered = new ArrayList<>(regions.keySet());
    ordered.sort((a, b) -> node(a).toString().compareTo(node(b).toString()));
    for (ActorRef region : ordered) {
      Address node = node(region);
      Deque<Long> reserved = reservations.computeIfAbsent(node, n -> new ArrayDeque<>());
      while (!reserved.isEmpty() && now - reserved.peekFirst() > RESERVATION.toNanos()) {
        reserved.pollFirst();
      }
      int available = free.getOrDefault(node, 0) - reserved.size();
      if (available > bestFree) {
        best = region;
        bestFree = available;
      }
    }
    if (best == null) {
      throw new IllegalStateException("no worker region to allocate a shard to");
    }
    reservations.get(node(best)).addLast(now);
    return best;
  }

  private Address node(ActorRef region) {
    Address address = region.path().address();
    return address.hasLocalScope() ? Cluster.get(Adapter.toClassic(system)).selfAddress() : address;
  }

  private CompletionStage<Map<Address, Integer>> freeDevicesByNode() {
    return DeviceCensus.take(system, ASK_TIMEOUT).thenApply(nodes -> {
      Map<Address, Integer> free = new HashMap<>();
      nodes.forEach(n -> free.put(n.node(), n.available(owner -> false)));
      return free;
    });
  }
}
