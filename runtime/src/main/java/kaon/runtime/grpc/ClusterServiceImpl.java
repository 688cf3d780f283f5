package kaon.runtime.grpc;

import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import kaon.actors.worker.DeviceCensus;
import kaon.protocol.v1.ClusterServicePowerApi;
import kaon.protocol.v1.Device;
import kaon.protocol.v1.DrainNodeRequest;
import kaon.protocol.v1.DrainNodeResponse;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListDevicesResponse;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.ListMembersResponse;
import kaon.protocol.v1.Member;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Leave;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;

/**
 * {@code kaon.v1.ClusterService}: the cluster's members from Pekko cluster state, its devices from
 * a {@link DeviceCensus}, and graceful draining of a node.
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
    return DeviceCensus.take(system, timeout).thenApply(nodes -> nodes.stream()
        .flatMap(n -> n.devices().stream().map(d -> Device.newBuilder()
            .setNode(n.node().toString())
            .setId(d.slot().id())
            .setDevice(d.slot().deviceName())
            .setThreads(d.slot().intraOpThreads())
            .setOwner(d.owner())
            .build()))
        .toList());
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
