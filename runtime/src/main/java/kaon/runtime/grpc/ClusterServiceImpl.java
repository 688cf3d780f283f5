package kaon.runtime.grpc;

import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import kaon.actors.worker.NodeAgent;
import kaon.protocol.v1.ClusterServicePowerApi;
import kaon.protocol.v1.Device;
import kaon.protocol.v1.DrainNodeRequest;
import kaon.protocol.v1.DrainNodeResponse;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListDevicesResponse;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.ListMembersResponse;
import kaon.protocol.v1.Member;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Leave;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;

/**
 * {@code kaon.v1.ClusterService}: the cluster's members from Pekko cluster state, its devices from
 * every node's {@link NodeAgent} (found through the receptionist), and graceful draining of a node.
 */
public final class ClusterServiceImpl implements ClusterServicePowerApi {

  private final ActorSystem<?> system;
  private final BearerToken token;
  private final Duration timeout;

  public ClusterServiceImpl(ActorSystem<?> system, BearerToken token, GrpcSettings settings) {
    this.system = system;
    this.token = token;
    this.timeout = settings.askTimeout();
  }

  @Override
  public CompletionStage<ListMembersResponse> listMembers(ListMembersRequest in, Metadata metadata) {
    token.check(metadata);
    Cluster cluster = Cluster.get(system);
    ListMembersResponse.Builder out = ListMembersResponse.newBuilder();
    var unreachable = cluster.state().getUnreachable();
    cluster.state().getMembers().forEach(m -> out.addMembers(Member.newBuilder()
        .setAddress(m.address().toString())
        .addAllRoles(m.getRoles())
        .setStatus(m.status().toString())
        .setReachable(!unreachable.contains(m))));
    return CompletableFuture.completedFuture(out.build());
  }

  @Override
  public CompletionStage<ListDevicesResponse> listDevices(ListDevicesRequest in, Metadata metadata) {
    token.check(metadata);
    return devices().thenApply(list -> ListDevicesResponse.newBuilder().addAllDevices(list).build());
  }

  /** Every device of the cluster and its owner. */
  public CompletionStage<List<Device>> devices() {
    Address self = Cluster.get(system).selfMember().address();
    return AskPattern.<Receptionist.Command, Receptionist.Listing>ask(
            system.receptionist(), replyTo -> Receptionist.find(NodeAgent.SERVICE_KEY, replyTo), timeout, system.scheduler())
        .thenCompose(listing -> {
          List<CompletableFuture<List<Device>>> perNode = new ArrayList<>();
          for (ActorRef<NodeAgent.Command> agent : listing.getServiceInstances(NodeAgent.SERVICE_KEY)) {
            Address node = agent.path().address().hasLocalScope() ? self : agent.path().address();
            perNode.add(AskPattern.<NodeAgent.Command, NodeAgent.Devices>ask(
                    agent, NodeAgent.ListDevices::new, timeout, system.scheduler())
                .thenApply(devices -> devices.devices().stream().map(d -> Device.newBuilder()
                    .setNode(node.toString())
                    .setId(d.slot().id())
                    .setDevice(d.slot().deviceName())
                    .setThreads(d.slot().intraOpThreads())
                    .setOwner(d.owner())
                    .build()).toList())
                .toCompletableFuture());
          }
          return CompletableFuture.allOf(perNode.toArray(CompletableFuture[]::new))
              .thenApply(x -> perNode.stream().flatMap(f -> f.join().stream()).toList());
        });
  }

  /** How many devices of the cluster nobody owns. */
  public CompletionStage<Integer> freeDevices() {
    return devices().thenApply(list -> (int) list.stream().filter(d -> d.getOwner().isEmpty()).count());
  }

  @Override
  public CompletionStage<DrainNodeResponse> drainNode(DrainNodeRequest in, Metadata metadata) {
    token.check(metadata);
    if (in.getAddress().isBlank()) {
      throw SpecResolver.invalid("address", "is required (see ListMembers)");
    }
    Cluster cluster = Cluster.get(system);
    for (var member : cluster.state().getMembers()) {
      if (member.address().toString().equals(in.getAddress())) {
        // Leaving hands the node's shards (jobs, workers) to the others before it stops.
        cluster.manager().tell(Leave.create(member.address()));
        return CompletableFuture.completedFuture(
            DrainNodeResponse.newBuilder().setAddress(in.getAddress()).setStatus("leaving").build());
      }
    }
    throw new GrpcServiceException(Status.NOT_FOUND.withDescription("address: no member " + in.getAddress()));
  }
}
