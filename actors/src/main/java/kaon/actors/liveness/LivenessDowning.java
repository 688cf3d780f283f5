package kaon.actors.liveness;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import kaon.protocol.KryoWireMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;

/**
 * Downs a member the moment its process is seen to end ({@link NodeLiveness}), instead of after
 * the failure detector's missing heartbeats and the split-brain resolver's stable-after (about 8 s
 * together here). Downing is what moves a dead node's shards, and with them the coordinators of
 * its jobs, to the others; for the node that ran a job's coordinator it was most of the job's
 * recovery time (bench/recovery).
 *
 * <p>One per node. Each registers with the receptionist, and each watches every other it finds
 * there, asking it for its liveness endpoint. A node whose connection ends is downed only if it is
 * still a member that is joining or up, and only by a node that reaches a strict majority of the
 * members without it ({@link #shouldDown}): the same side the resolver's keep-majority would keep,
 * so this never downs a majority from a minority. A node that hangs or is cut off keeps its
 * sockets open and is left to the resolver, as before. A false alarm (a reset from something
 * other than the node's own end) downs a live node, which then leaves and restarts; what must
 * never run twice is fenced all the same (a job's lease, its generations).
 */
public final class LivenessDowning extends AbstractBehavior<LivenessDowning.Command> {

  /** What it accepts. */
  public sealed interface Command permits GetEndpoint, Listed, Answered, Gone {}

  /** Asks for this node's liveness endpoint; answered with a {@link NodeLiveness.Endpoint}. */
  public record GetEndpoint(ActorRef<NodeLiveness.Endpoint> replyTo) implements Command, KryoWireMessage {}

  private record Listed(Receptionist.Listing listing) implements Command {}

  private record Answered(ActorRef<Command> agent, NodeLiveness.Endpoint endpoint) implements Command {}

  private record Gone(NodeLiveness.NodeGone gone) implements Command {}

  /** Where every node's agent registers. */
  public static final ServiceKey<Command> SERVICE_KEY = ServiceKey.create(Command.class, "kaon-liveness");

  /** An endpoint is one message away; a node that does not answer in this is asked again at the next listing. */
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);

  private final NodeLiveness liveness;
  private final NodeLiveness.Endpoint self;
  private final Cluster cluster;
  private final ActorRef<NodeLiveness.NodeGone> goneAdapter;
  /** Agents asked or watched, so that each is asked once per listing it newly appears in. */
  private final Set<ActorRef<Command>> known = new HashSet<>();

  /** This node's agent; null-safe when the node's liveness listener cannot start (then it only answers none). */
  public static Behavior<Command> create() {
    return Behaviors.setup(LivenessDowning::new);
  }

  private LivenessDowning(ActorContext<Command> context) {
    super(context);
    this.self = NodeLiveness.endpointOf(context.getSystem());
    this.liveness = self == null ? null : NodeLiveness.get(context.getSystem());
    this.cluster = Cluster.get(context.getSystem());
    this.goneAdapter = context.messageAdapter(NodeLiveness.NodeGone.class, Gone::new);
    if (self != null) {
      context.getSystem().receptionist().tell(Receptionist.register(SERVICE_KEY, context.getSelf()));
      context.getSystem().receptionist().tell(Receptionist.subscribe(SERVICE_KEY,
          context.messageAdapter(Receptionist.Listing.class, Listed::new)));
    }
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(GetEndpoint.class, this::onGetEndpoint)
        .onMessage(Listed.class, this::onListed)
        .onMessage(Answered.class, this::onAnswered)
        .onMessage(Gone.class, this::onGone)
        .build();
  }

  private Behavior<Command> onGetEndpoint(GetEndpoint get) {
    if (self != null) {
      get.replyTo().tell(self);
    }
    return this;
  }

  private Behavior<Command> onListed(Listed listed) {
    Set<ActorRef<Command>> agents = listed.listing().getServiceInstances(SERVICE_KEY);
    known.retainAll(agents);
    for (ActorRef<Command> agent : agents) {
      if (!agent.equals(getContext().getSelf()) && known.add(agent)) {
        getContext().ask(NodeLiveness.Endpoint.class, agent, ASK_TIMEOUT, GetEndpoint::new,
            (endpoint, error) -> new Answered(agent, endpoint));
      }
    }
    return this;
  }

  private Behavior<Command> onAnswered(Answered answered) {
    if (answered.endpoint() == null) {
      known.remove(answered.agent()); // asked again when the listing changes
    } else {
      liveness.watch(answered.endpoint(), goneAdapter);
    }
    return this;
  }

  private Behavior<Command> onGone(Gone gone) {
    String node = gone.gone().node().node();
    Set<String> members = new HashSet<>();
    Set<String> joiningOrUp = new HashSet<>();
    Member dead = null;
    for (Member member : cluster.state().getMembers()) {
      members.add(member.address().toString());
      if (member.address().toString().equals(node)) {
        dead = member;
      }
      MemberStatus status = member.status();
      if (status == MemberStatus.joining() || status == MemberStatus.weaklyUp() || status == MemberStatus.up()) {
        joiningOrUp.add(member.address().toString());
      }
    }
    Set<String> unreachable = new HashSet<>();
    cluster.state().getUnreachable().forEach(member -> unreachable.add(member.address().toString()));
    if (shouldDown(node, members, joiningOrUp, unreachable)) {
      getContext().getLog().warn("downing {}: its process ended ({}), and this node reaches a majority without it", node,
          gone.gone().how());
      cluster.manager().tell(new Down(dead.address()));
      quarantine(dead);
    } else {
      getContext().getLog().info("not downing {} though its process ended ({}): it is not a joining or up member, or "
          + "this node does not reach a majority without it; the split-brain resolver decides", node, gone.gone().how());
    }
    return this;
  }

  /**
   * Quarantines the dead incarnation. A downed member is removed (and its shards and singletons
   * move) only once the cluster also holds it unreachable or terminated, which the failure
   * detector says only after seconds of missing heartbeats; a quarantine marks it terminated at
   * once. Pekko offers it only on its remoting provider (internal API of Pekko 1.2; a later
   * version that moves it makes this log and fall back on the failure detector). A process that
   * has ended has nothing left to lose by it; one that runs on (a false alarm) is downed anyway.
   */
  private void quarantine(Member dead) {
    try {
      var provider = org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(getContext().getSystem());
      ((org.apache.pekko.remote.RemoteActorRefProvider) ((org.apache.pekko.actor.ExtendedActorSystem) provider).provider())
          .quarantine(dead.address(), scala.Option.apply(dead.uniqueAddress().longUid()), "its process ended (node liveness)");
    } catch (RuntimeException | LinkageError e) {
      getContext().getLog().warn("cannot quarantine {} ({}); it is removed once the failure detector finds it unreachable",
          dead.address(), e.toString());
    }
  }

  /**
   * Whether a node that saw the process of {@code gone} end downs it: {@code gone} is one of the
   * {@code members} and is {@code joiningOrUp} (one that leaves or is down already is on its way
   * out), and the members this node reaches, without {@code gone} and the {@code unreachable}
   * ones, are more than half of all members.
   */
  static boolean shouldDown(String gone, Set<String> members, Set<String> joiningOrUp, Set<String> unreachable) {
    if (!members.contains(gone) || !joiningOrUp.contains(gone)) {
      return false;
    }
    long reached = members.stream().filter(m -> !m.equals(gone) && !unreachable.contains(m)).count();
    return reached * 2 > members.size();
  }
}
