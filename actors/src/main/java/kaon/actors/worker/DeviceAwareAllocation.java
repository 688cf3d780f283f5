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
 * job hears why.
 *
 * <p>A shard stays where it was allocated, so such a worker would find no device on every later
 * attempt too, even once another node has one (a node that joins is often seen by the census a
 * moment before its shard region registers). Rebalancing moves exactly those workers: ones that
 * own no device on their node, allocated a while ago, when another node has a free device. A
 * worker that owns a device (training, or holding it between generations) is never moved.
 */
public final class DeviceAwareAllocation extends ShardCoordinator.AbstractShardAllocationStrategy {

  /** Long enough for an allocated worker to start and take its device. */
  private static final Duration RESERVATION = Duration.ofSeconds(10);
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);
  /** A worker allocated this recently may still be taking its device: not moved yet. */
  private static final Duration SETTLE = Duration.ofSeconds(3);

  private final ActorSystem<?> system;
  private final Map<Address, Deque<Long>> reservations = new HashMap<>();
  /**
   * A worker moved once is not moved again for this long: an idle shard of an ended job owns no
   * device either, and must not be handed off at every rebalance tick.
   */
  private static final Duration MOVE_COOLDOWN = Duration.ofSeconds(30);

  /** When each shard was last allocated here. */
  private final Map<String, Long> allocatedAt = new HashMap<>();
  /** When each shard was last chosen for a move. */
  private final Map<String, Long> movedAt = new HashMap<>();

  public DeviceAwareAllocation(org.apache.pekko.actor.ActorSystem system) {
    this.system = Adapter.toTyped(system);
  }

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    CompletionStage<ActorRef> choice = freeDevicesByNode().thenApply(free -> {
      ActorRef region = choose(free, current);
      synchronized (this) {
        allocatedAt.put(shardId, System.nanoTime());
      }
      return region;
    });
    return scala.jdk.javaapi.FutureConverters.asScala(choice);
  }

  @Override
  public Future<Set<String>> rebalance(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    CompletionStage<Set<String>> moves = DeviceCensus.take(system, ASK_TIMEOUT).thenApply(nodes -> homeless(nodes, current, inProgress));
    return scala.jdk.javaapi.FutureConverters.asScala(moves);
  }

  /** Workers without a device on their node, when a node with a registered region has one free. */
  private synchronized Set<String> homeless(
      List<DeviceCensus.NodeDevices> nodes, Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    Map<Address, DeviceCensus.NodeDevices> byNode = new HashMap<>();
    nodes.forEach(n -> byNode.put(n.node(), n));
    boolean freeSomewhere = current.keySet().stream()
        .map(region -> byNode.get(node(region)))
        .anyMatch(n -> n != null && n.available(owner -> false) > 0);
    if (!freeSomewhere) {
      return Collections.emptySet();
    }
    long now = System.nanoTime();
    Set<String> move = new java.util.HashSet<>();
    movedAt.values().removeIf(t -> now - t > MOVE_COOLDOWN.toNanos());
    allocatedAt.keySet().retainAll(current.values().stream().flatMap(shards -> scala.jdk.javaapi.CollectionConverters.asJava(shards).stream()).toList());
    for (Map.Entry<ActorRef, IndexedSeq<String>> e : current.entrySet()) {
      DeviceCensus.NodeDevices devices = byNode.get(node(e.getKey()));
      if (devices == null) {
        continue;   // its node did not answer: nothing is known about it
      }
      for (String shard : scala.jdk.javaapi.CollectionConverters.asJava(e.getValue())) {
        boolean owns = devices.devices().stream().anyMatch(d -> d.owner().equals(shard));
        Long at = allocatedAt.get(shard);
        boolean settled = at == null || now - at > SETTLE.toNanos();
        Long moved = movedAt.get(shard);
        boolean cooled = moved == null || now - moved > MOVE_COOLDOWN.toNanos();
        if (!owns && settled && cooled && !inProgress.contains(shard)) {
          move.add(shard);
          movedAt.put(shard, now);
        }
      }
    }
    return move;
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
