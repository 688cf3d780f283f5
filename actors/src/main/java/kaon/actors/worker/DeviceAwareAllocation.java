package kaon.actors.worker;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
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
 * the allocations this strategy made in the last few seconds whose workers the census does not
 * show owning a device yet (several ranks of a job are allocated at once). A worker that has
 * taken its device counts once, as the census's owner, not also as a reservation: counted twice,
 * the 32 ranks of a job on 8 nodes of 4 devices saw every node full before the last ones were
 * placed, and those went where no device was free, six generations in a row.
 *
 * <p>A job starts ranks for the devices it counted (its first generation, for those the API
 * counted at submission), so a worker that finds none available is early, not doomed: the
 * devices are still being given back (by workers a new generation left out, which release them
 * when told, a moment after the new ones are allocated), or the node that has them was seen by
 * the census a moment before its shard region registered. While no node with a
 * region has a device available, the allocation fails on purpose, for up to {@code
 * WAIT_FOR_DEVICE}; sharding asks again (its retry-interval, 2 s). Placed at once where no device
 * was free, such workers failed their generation again and again: a soak saw a job re-form five
 * times in 21 s, and bench/scale's 32 ranks took 58 s to their first step. After the wait the
 * least loaded node gets the worker anyway; its {@link NodeAgent} then refuses it a device and
 * the job hears why.
 *
 * <p>A shard stays where it was allocated, so a worker placed without a device would find none on
 * every later attempt too, even once another node has one. Rebalancing moves exactly those
 * workers: ones that own no device on a node that has none free, allocated a while ago, when
 * another node has a free device. A worker that owns a device (training, or holding it between
 * generations) is never moved.
 */
public final class DeviceAwareAllocation extends ShardCoordinator.AbstractShardAllocationStrategy {

  /** Long enough for an allocated worker to start and take its device. */
  private static final Duration RESERVATION = Duration.ofSeconds(10);
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);
  /**
   * A worker allocated this recently may still be taking its device: not moved yet. As long as a
   * reservation: the 128 ranks of a job on a busy machine took more than 3 s to take theirs, and
   * moving one stopped it and failed its generation.
   */
  private static final Duration SETTLE = RESERVATION;
  /**
   * Allocations within this of a census share it. Sharding allocates a job's ranks at once, and a
   * census per rank asked every node's agent once per rank: 128 ranks on 8 nodes made 1,024 asks,
   * the agents' answers came later than a census waits, and nodes counted with no devices. A
   * shared census is still exact enough: what this strategy allocated since is in its
   * reservations, and a device given back since is only seen a moment later.
   */
  private static final Duration CENSUS_REUSE = Duration.ofMillis(500);
  /** How long a shard waits for a device to be available on a node with a region. */
  private static final Duration WAIT_FOR_DEVICE = Duration.ofSeconds(10);

  private final ActorSystem<?> system;
  /** Per node, the shards allocated to it lately and when. */
  private final Map<Address, Map<String, Long>> reservations = new HashMap<>();
  /**
   * A worker moved once is not moved again for this long: an idle shard of an ended job owns no
   * device either, and must not be handed off at every rebalance tick.
   */
  private static final Duration MOVE_COOLDOWN = Duration.ofSeconds(30);

  /** When each shard was last allocated here. */
  private final Map<String, Long> allocatedAt = new HashMap<>();
  /** When each shard was last chosen for a move. */
  private final Map<String, Long> movedAt = new HashMap<>();
  /** When each shard waiting for a device first did. */
  private final Map<String, Long> waitingSince = new HashMap<>();

  private CompletableFuture<Map<Address, DeviceCensus.NodeDevices>> lastCensus;
  private long lastCensusAt;

  public DeviceAwareAllocation(org.apache.pekko.actor.ActorSystem system) {
    this.system = Adapter.toTyped(system);
  }

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    CompletionStage<ActorRef> choice = census().thenApply(nodes -> {
      ActorRef region = choose(nodes, current, shardId);
      synchronized (this) {
        allocatedAt.put(shardId, System.nanoTime());
      }
      return region;
    });
    // The coordinator logs a failed allocation at ERROR with its exception's stack. A wait for a
    // device is expected and its exception has no stack: handed over as it is, not wrapped in a
    // CompletionException (which has one), it logs as two lines instead of a dozen.
    scala.concurrent.Promise<ActorRef> home = scala.concurrent.Promise.apply();
    choice.whenComplete((region, failure) -> {
      if (failure == null) {
        home.success(region);
      } else {
        home.failure(failure instanceof java.util.concurrent.CompletionException && failure.getCause() != null
            ? failure.getCause() : failure);
      }
    });
    return home.future();
  }

  @Override
  public Future<Set<String>> rebalance(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    CompletionStage<Set<String>> moves = DeviceCensus.take(system, ASK_TIMEOUT).thenApply(nodes -> homeless(nodes, current, inProgress));
    return scala.jdk.javaapi.FutureConverters.asScala(moves);
  }

  /** Workers without a device on their node, when a node with a registered region has one free. */
  private synchronized Set<String> homeless(
      List<DeviceCensus.NodeDevices> nodes, Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    Map<Address, DeviceCensus.NodeDevices> byNode = byNode(nodes);
    boolean freeSomewhere = current.keySet().stream()
        .map(region -> byNode.get(node(region)))
        .anyMatch(n -> n != null && n.free() > 0);
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
      // A worker whose node has a free device takes it when its generation prepares it: not moved.
      boolean noneFreeHere = devices.free() == 0;
      for (String shard : scala.jdk.javaapi.CollectionConverters.asJava(e.getValue())) {
        boolean owns = devices.devices().stream().anyMatch(d -> d.owner().equals(shard));
        Long at = allocatedAt.get(shard);
        boolean settled = at == null || now - at > SETTLE.toNanos();
        Long moved = movedAt.get(shard);
        boolean cooled = moved == null || now - moved > MOVE_COOLDOWN.toNanos();
        if (!owns && noneFreeHere && settled && cooled && !inProgress.contains(shard)) {
          move.add(shard);
          movedAt.put(shard, now);
        }
      }
    }
    return move;
  }

  /**
   * Runs on the thread that completed the device query: synchronized guards the reservations.
   *
   * @throws WaitingForDevice when no node with a registered region has a device available
   */
  private synchronized ActorRef choose(Map<Address, DeviceCensus.NodeDevices> census,
      Map<ActorRef, IndexedSeq<String>> regions, String shardId) {
    long now = System.nanoTime();
    List<ActorRef> ordered = new ArrayList<>(regions.keySet());
    ordered.sort((a, b) -> node(a).toString().compareTo(node(b).toString()));
    // A shard allocated again (its worker stopped, or was refused) is no longer where it was.
    reservations.values().forEach(r -> r.remove(shardId));
    Map<Address, Integer> available = new LinkedHashMap<>();
    Map<Address, Integer> free = new HashMap<>();
    Map<Address, ActorRef> regionOf = new HashMap<>();
    for (ActorRef region : ordered) {
      Address node = node(region);
      Map<String, Long> reserved = reservations.computeIfAbsent(node, n -> new HashMap<>());
      reserved.values().removeIf(at -> now - at > RESERVATION.toNanos());
      DeviceCensus.NodeDevices devices = census.get(node);
      int unowned = devices == null ? 0 : devices.free();
      free.put(node, unowned);
      available.put(node, devices == null ? 0 : available(unowned, devices.owners(), reserved.keySet()));
      regionOf.put(node, region);
    }
    waitingSince.values().removeIf(t -> now - t > 6 * WAIT_FOR_DEVICE.toNanos());
    Long since = waitingSince.get(shardId);
    Address chosen = place(available, free, since == null || now - since < WAIT_FOR_DEVICE.toNanos());
    if (chosen == null) {
      if (since == null) {
        waitingSince.put(shardId, now);
        system.log().info("worker shard {} waits up to {} s for a device to be available on a node with a shard region",
            shardId, WAIT_FOR_DEVICE.toSeconds());
      }
      throw new WaitingForDevice(shardId);
    }
    waitingSince.remove(shardId);
    reservations.get(chosen).put(shardId, now);
    return regionOf.get(chosen);
  }

  /**
   * A node's devices available to a new worker: its {@code free} ones, minus those reserved for
   * shards allocated to it lately ({@code reserved}) that are not among the devices' {@code
   * owners} yet. A reserved shard that owns a device is already counted as not free.
   */
  static int available(int free, Set<String> owners, Set<String> reserved) {
    int pending = 0;
    for (String shard : reserved) {
      if (!owners.contains(shard)) {
        pending++;
      }
    }
    return free - pending;
  }

  /**
   * Where a worker goes: of the nodes with a registered region, one with a {@code free} device
   * if any, and of those the one with the most devices {@code available} (free ones minus
   * reservations), then the most free ones (in the regions' order, the first of equals); even
   * one without a free device, as its agent then tells the job why.
   * Null when it should wait instead ({@code mayWait}): no node with a region has a free device at
   * all. Reservations alone never make a worker wait: a shard allocated only to be told to stop
   * (a lost rank's, or a finished job's) reserves a device it never takes, and a soak's job then
   * waited 10 s for a device that was free.
   */
  static Address place(Map<Address, Integer> available, Map<Address, Integer> free, boolean mayWait) {
    Address best = null;
    int bestAvailable = Integer.MIN_VALUE;
    int bestFree = Integer.MIN_VALUE;
    boolean anyFree = false;
    for (Map.Entry<Address, Integer> e : available.entrySet()) {
      int unowned = free.getOrDefault(e.getKey(), 0);
      anyFree |= unowned > 0;
      // A node with a free device always beats one without: reservations of workers that never
      // take theirs (a lost rank's, allocated only to be stopped) can leave a node with a free
      // device fewer available than a full one, and a spare stood by there found no device.
      boolean better;
      if (best == null) {
        better = true;
      } else if ((unowned > 0) != (bestFree > 0)) {
        better = unowned > 0;
      } else {
        better = e.getValue() > bestAvailable || e.getValue() == bestAvailable && unowned > bestFree;
      }
      if (better) {
        best = e.getKey();
        bestAvailable = e.getValue();
        bestFree = unowned;
      }
    }
    if (best == null) {
      throw new IllegalStateException("no worker region to allocate a shard to");
    }
    return !anyFree && mayWait ? null : best;
  }

  /** The allocation of a shard is left for sharding to ask again: see the class comment. */
  static final class WaitingForDevice extends RuntimeException {
    WaitingForDevice(String shardId) {
      super("worker shard " + shardId + " waits for a device to be available on a node with a shard region", null, false,
          false);
    }
  }

  private Address node(ActorRef region) {
    return nodeOf(region, Cluster.get(Adapter.toClassic(system)).selfAddress());
  }

  /** The node of shard region {@code region}: its address, or {@code self} for this node's own (a local path). */
  public static Address nodeOf(ActorRef region, Address self) {
    Address address = region.path().address();
    return address.hasLocalScope() ? self : address;
  }

  /** The devices of every node: the census in flight or taken within {@link #CENSUS_REUSE}, or a new one. */
  private synchronized CompletionStage<Map<Address, DeviceCensus.NodeDevices>> census() {
    long now = System.nanoTime();
    boolean reusable = lastCensus != null && !lastCensus.isCompletedExceptionally()
        && (!lastCensus.isDone() || now - lastCensusAt < CENSUS_REUSE.toNanos());
    if (!reusable) {
      lastCensusAt = now;
      lastCensus = DeviceCensus.take(system, ASK_TIMEOUT).thenApply(DeviceAwareAllocation::byNode).toCompletableFuture();
    }
    return lastCensus;
  }

  private static Map<Address, DeviceCensus.NodeDevices> byNode(List<DeviceCensus.NodeDevices> nodes) {
    Map<Address, DeviceCensus.NodeDevices> byNode = new HashMap<>();
    nodes.forEach(n -> byNode.put(n.node(), n));
    return byNode;
  }
}
