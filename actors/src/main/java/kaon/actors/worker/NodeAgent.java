package kaon.actors.worker;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import kaon.actors.metrics.KaonMetrics;
import kaon.protocol.KryoWireMessage;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The devices of this node and who owns each one. A device has at most one owner at any time:
 * that is what lets a worker pin its model and threads to it without checking for neighbours.
 *
 * <p>Owners are watched: a worker that stops or crashes without releasing its device gives it
 * back anyway. Nothing survives a restart of the node, and nothing needs to: the workers that
 * owned devices died with it.
 */
public final class NodeAgent extends AbstractBehavior<NodeAgent.Command> {

  /**
   * Every node's agent is the system actor of this name, so others reach it at a path they know
   * from the membership alone ({@link #on}): a node is asked as soon as it is a member, instead of
   * once a receptionist listing has caught up with it (up to a Distributed Data gossip later).
   */
  public static final String NAME = "node-agent";

  /** The worker nodes whose membership is now in one of {@code statuses}: those whose agents to address. */
  public static List<Address> workerNodes(ActorSystem<?> system, java.util.Set<MemberStatus> statuses) {
    List<Address> nodes = new ArrayList<>();
    for (Member member : Cluster.get(system).state().getMembers()) {
      if (statuses.contains(member.status()) && member.hasRole(WorkerEntity.ROLE)) {
        nodes.add(member.address());
      }
    }
    return nodes;
  }

  /** The agent of the node at {@code node}: what the census and the coordinators' warm-ups address. */
  public static org.apache.pekko.actor.ActorSelection on(ActorSystem<?> system, Address node) {
    return Adapter.toClassic(system).actorSelection(node + "/system/" + NAME);
  }

  /** What the agent accepts. */
  public sealed interface Command permits AcquireDevice, ReleaseDevice, ListDevices, WarmTask, OwnerStopped {}

  /** Asks for a free device for {@code owner}; the owner is watched until it releases it. */
  public record AcquireDevice(String owner, ActorRef<?> ownerRef, ActorRef<DeviceReply> replyTo)
      implements Command {}

  /** Gives back every device {@code owner} holds. */
  public record ReleaseDevice(String owner) implements Command {}

  /** Asks for every device and its owner. */
  public record ListDevices(ActorRef<Devices> replyTo) implements Command, KryoWireMessage {}

  /**
   * A job trains {@code task}: a node with a free device readies itself for a rank of it ({@link
   * TaskWarmup}). Its coordinator says so to every worker node once a generation trains, and again
   * when a node joins while it trains.
   */
  public record WarmTask(String task) implements Command, KryoWireMessage {}

  /** Answer to {@link AcquireDevice}. */
  public sealed interface DeviceReply permits DeviceGranted, NoFreeDevice {}

  /** The device now belongs to the asking owner. */
  public record DeviceGranted(DeviceSlot slot) implements DeviceReply {}

  /** Every device is taken; {@code reason} says by whom, for the job's status. */
  public record NoFreeDevice(String reason) implements DeviceReply {}

  /** The devices of this node; {@code owner} is empty for a free one. */
  public record Devices(List<DeviceOwnership> devices) implements KryoWireMessage {}

  /** A device and its owner. */
  public record DeviceOwnership(DeviceSlot slot, String owner) {}

  private record OwnerStopped(String owner) implements Command {}

  /** Slot id to slot, in discovery order: the first free one is granted first. */
  private final Map<String, DeviceSlot> slots = new LinkedHashMap<>();
  /** Slot id to owner. */
  private final Map<String, String> owners = new LinkedHashMap<>();
  /** Owner to the actor watched for it. */
  private final Map<String, ActorRef<?>> watched = new LinkedHashMap<>();

  /** Readies the node for tasks its jobs train; null when it does not. */
  private final TaskWarmup warmup;

  /** An agent for the given devices, all free (none on a node without the worker role), that warms no task. */
  public static Behavior<Command> create(List<DeviceSlot> devices) {
    return create(devices, null);
  }

  /** An agent for the given devices that warms tasks with {@code warmup} while one of them is free; null: never. */
  public static Behavior<Command> create(List<DeviceSlot> devices, TaskWarmup warmup) {
    return Behaviors.setup(context -> new NodeAgent(context, devices, warmup));
  }

  private NodeAgent(ActorContext<Command> context, List<DeviceSlot> devices, TaskWarmup warmup) {
    super(context);
    this.warmup = warmup;
    devices.forEach(d -> slots.put(d.id(), d));
    counted();
  }

  /** The node's metrics count its devices as they are now. */
  private void counted() {
    KaonMetrics.get(getContext().getSystem()).devices(slots.size() - owners.size(), owners.size());
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(AcquireDevice.class, this::onAcquire)
        .onMessage(ReleaseDevice.class, r -> release(r.owner()))
        .onMessage(OwnerStopped.class, s -> release(s.owner()))
        .onMessage(ListDevices.class, this::onList)
        .onMessage(WarmTask.class, this::onWarm)
        .build();
  }

  private Behavior<Command> onAcquire(AcquireDevice acquire) {
    for (Map.Entry<String, String> e : owners.entrySet()) {
      if (e.getValue().equals(acquire.owner())) {
        // Asking twice (a retried message) must not take a second device.
        acquire.replyTo().tell(new DeviceGranted(slots.get(e.getKey())));
        return this;
      }
    }
    for (DeviceSlot slot : slots.values()) {
      if (!owners.containsKey(slot.id())) {
        owners.put(slot.id(), acquire.owner());
        getContext().watchWith(acquire.ownerRef(), new OwnerStopped(acquire.owner()));
        watched.put(acquire.owner(), acquire.ownerRef());
        getContext().getLog().info("device {} now owned by {}", slot.id(), acquire.owner());
        counted();
        acquire.replyTo().tell(new DeviceGranted(slot));
        return this;
      }
    }
    acquire.replyTo().tell(new NoFreeDevice(
        "all " + slots.size() + " devices of this node are in use (" + owners + ")"));
    return this;
  }

  private Behavior<Command> release(String owner) {
    ActorRef<?> ref = watched.remove(owner);
    if (ref != null) {
      getContext().unwatch(ref);
    }
    if (owners.values().removeIf(owner::equals)) {
      getContext().getLog().info("devices of {} released", owner);
      counted();
    }
    return this;
  }

  private Behavior<Command> onWarm(WarmTask warm) {
    // A node whose devices are all owned gets no new rank until one is given back, and the ranks
    // that own them have the task loaded already, or another task whose cores a warm-up would take.
    if (warmup != null && owners.size() < slots.size()) {
      warmup.warm(warm.task());
    }
    return this;
  }

  private Behavior<Command> onList(ListDevices list) {
    List<DeviceOwnership> out = new ArrayList<>();
    for (DeviceSlot slot : slots.values()) {
      out.add(new DeviceOwnership(slot, owners.getOrDefault(slot.id(), "")));
    }
    list.replyTo().tell(new Devices(new ArrayList<>(out)));
    return this;
  }
}
