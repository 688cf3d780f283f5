package kaon.actors.job;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import kaon.actors.worker.DeviceAwareAllocation;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.Address;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import scala.collection.immutable.IndexedSeq;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Places job entities (each job's coordinator) off the node that runs sharding's own
 * coordinators, where another coordinator node exists. Those are cluster singletons on the oldest
 * node of their role, and when that node dies they move only after it is removed (the removal
 * margin) and has read their state back. A job whose coordinator died with them waited for both:
 * in bench/recovery the singletons' move alone took 0.6 s after the margin, on top of the job's
 * own recovery. Apart, one node's death costs a job either its coordinator or sharding's, not
 * both. The jobs themselves are spread by count, as sharding's default strategy does.
 *
 * <p>A job can still end up there: the oldest node dies and the next oldest, now running the
 * singletons, already ran the job. Such a job is moved off once it has stayed there for {@link
 * #SETTLE}, one job per rebalance: not sooner, since the job may be re-forming after the very
 * death that moved the singletons, and a move restarts its coordinator (it recovers from the
 * journal and re-attaches to ranks that keep training; the journal lease hands over in turn).
 */
public final class JobPlacement extends ShardCoordinator.AbstractShardAllocationStrategy {

  /** How long a job stays on a singleton's node before it is moved off. */
  static final Duration SETTLE = Duration.ofSeconds(30);

  /** The roles whose sharding coordinators run as singletons: jobs' and workers'. */
  private static final List<String> SINGLETON_ROLES = List.of(JobEntity.ROLE, kaon.actors.worker.WorkerEntity.ROLE);

  private final Cluster cluster;
  /** Shards seen on a singleton's node, and since when (nanoTime). */
  private final Map<String, Long> onSingletonNode = new HashMap<>();

  public JobPlacement(org.apache.pekko.actor.ActorSystem system) {
    this.cluster = Cluster.get(system);
  }

  /**
   * A member as far as placement cares: where it is, its roles, its age (0 for the oldest member,
   * whatever its role) and whether it is up.
   */
  record Node(Address address, Set<String> roles, int age, boolean up) {}

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    Map<Address, ActorRef> regions = new HashMap<>();
    Map<Address, Integer> load = new HashMap<>();
    current.forEach((region, shards) -> {
      regions.put(node(region), region);
      load.put(node(region), shards.size());
    });
    if (regions.isEmpty()) {
      // Sharding asks only with regions registered; failed, it would ask again.
      return org.apache.pekko.dispatch.Futures.failed(
          new IllegalStateException("no shard region to place job shard " + shardId + " on"));
    }
    return Future.successful(regions.get(choose(load, singletonNodes(nodes(), SINGLETON_ROLES))));
  }

  @Override
  public Future<Set<String>> rebalance(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    Map<Address, List<String>> shards = new HashMap<>();
    current.forEach((region, ids) -> shards.put(node(region), CollectionConverters.asJava(ids)));
    Set<Address> avoid = singletonNodes(nodes(), SINGLETON_ROLES);
    long now = System.nanoTime();
    synchronized (this) {
      Set<String> there = new HashSet<>();
      shards.forEach((node, ids) -> {
        if (avoid.contains(node)) {
          there.addAll(ids);
        }
      });
      onSingletonNode.keySet().retainAll(there);
      there.forEach(shard -> onSingletonNode.putIfAbsent(shard, now));
      boolean elsewhere = shards.keySet().stream().anyMatch(node -> !avoid.contains(node));
      return Future.successful(inProgress.isEmpty() && elsewhere
          ? moveOff(onSingletonNode, now, SETTLE).map(Set::of).orElse(Set.of())
          : Set.of());
    }
  }

  /**
   * The node for a new job: the one with the fewest jobs among those not in {@code avoid}, or
   * among all when every node is to be avoided (a cluster of one coordinator node); ties go to the
   * lowest address, so that the choice does not depend on map order.
   */
  static Address choose(Map<Address, Integer> jobsPerNode, Set<Address> avoid) {
    List<Address> candidates = jobsPerNode.keySet().stream().filter(node -> !avoid.contains(node)).toList();
    Collection<Address> from = candidates.isEmpty() ? jobsPerNode.keySet() : candidates;
    return from.stream()
        .min(Comparator.<Address>comparingInt(jobsPerNode::get).thenComparing(Address::toString))
        .orElseThrow(() -> new IllegalStateException("no shard region to place a job on"));
  }

  /**
   * The nodes that run the singletons of {@code roles}: for each role, its oldest member that is
   * up or leaving (where Pekko runs a singleton), the lowest address first among equals.
   */
  static Set<Address> singletonNodes(Collection<Node> nodes, List<String> roles) {
    Set<Address> hosts = new HashSet<>();
    for (String role : roles) {
      nodes.stream().filter(n -> n.up() && n.roles().contains(role))
          .min(Comparator.comparingInt(Node::age).thenComparing(n -> n.address().toString()))
          .ifPresent(n -> hosts.add(n.address()));
    }
    return hosts;
  }

  /** The job that has stayed longest on a singleton's node, once that is at least {@code settle}. */
  static Optional<String> moveOff(Map<String, Long> since, long nowNanos, Duration settle) {
    return since.entrySet().stream()
        .filter(e -> nowNanos - e.getValue() >= settle.toNanos())
        .min(Map.Entry.<String, Long>comparingByValue().thenComparing(Map.Entry.comparingByKey()))
        .map(Map.Entry::getKey);
  }

  private List<Node> nodes() {
    List<Member> members = new ArrayList<>();
    cluster.state().getMembers().forEach(members::add);
    members.sort(Member.ageOrdering());
    List<Node> nodes = new ArrayList<>();
    for (Member m : members) {
      boolean up = m.status() == MemberStatus.up() || m.status() == MemberStatus.leaving();
      nodes.add(new Node(m.address(), CollectionConverters.asJava(m.roles()), nodes.size(), up));
    }
    return nodes;
  }

  private Address node(ActorRef region) {
    return DeviceAwareAllocation.nodeOf(region, cluster.selfAddress());
  }
}
