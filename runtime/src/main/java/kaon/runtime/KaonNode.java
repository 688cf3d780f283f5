package kaon.runtime;

import ai.djl.engine.Engine;
import com.typesafe.config.Config;
import java.util.ArrayList;
import java.util.List;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.job.JobCoordinator;
import kaon.actors.training.TaskCatalog;
import kaon.actors.worker.DeviceSlot;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.NodeAgent;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import kaon.runtime.grpc.BearerToken;
import kaon.runtime.grpc.GrpcServer;
import kaon.runtime.grpc.GrpcSettings;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.cluster.typed.Join;

/**
 * A Kaon node: an actor system in the cluster with this node's devices, the worker and job
 * sharding regions, and (later) the gRPC gateway. {@link #init} is what tests reuse.
 */
public final class KaonNode {

  /** Nodes with this role serve the gRPC API. */
  public static final String GATEWAY_ROLE = "gateway";

  /** Name of the actor system; every node of a cluster must use the same. */
  public static final String SYSTEM_NAME = "kaon";

  private KaonNode() {}

  /**
   * Starts a node: with {@code pekko.cluster.seed-nodes} it joins them, without it is a cluster
   * of its own (the local mode of {@code kaon train} and a lone {@code kaon node}). Cassandra (embedded unless configured) and device discovery block; both
   * happen here, before any actor runs.
   */
  public static Running startLocal(Config config, TaskCatalog catalog, java.util.function.Consumer<String> say) {
    Config withCassandra = CassandraConnection.prepare(config, say);
    KaonSettings settings = KaonSettings.fromConfig(withCassandra);
    GrpcSettings grpc = GrpcSettings.fromConfig(withCassandra);
    BearerToken token;
    try {
      token = BearerToken.resolve(grpc);
    } catch (java.io.IOException e) {
      throw new IllegalStateException("cannot read or write the API token " + grpc.tokenFile() + ": " + e.getMessage(), e);
    }
    List<DeviceSlot> devices = discoverDevices(settings);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), SYSTEM_NAME, withCassandra);
    try {
      Cluster cluster = Cluster.get(system);
      // Without seed nodes the node is a cluster of its own; with them Pekko joins them itself.
      if (withCassandra.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
        cluster.manager().tell(Join.create(cluster.selfMember().address()));
      }
      CheckpointStore store = init(system, settings, devices, catalog);
      int port = -1;
      if (grpc.enabled() && cluster.selfMember().hasRole(GATEWAY_ROLE)) {
        ServerBinding binding = GrpcServer.start(system, grpc, token, catalog, store).toCompletableFuture()
            .get(30, java.util.concurrent.TimeUnit.SECONDS);
        port = binding.localAddress().getPort();
      }
      return new Running(system, port, grpc.tls());
    } catch (Exception e) {
      system.terminate();
      Throwable cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      throw new IllegalStateException("the gRPC gateway did not start on " + grpc.host() + ":" + grpc.port() + ": "
          + cause.getMessage(), cause);
    }
  }

  /**
   * A started node.
   *
   * @param system its actor system; terminate it to stop the node
   * @param grpcPort port of its gRPC gateway, or -1 when it serves none
   * @param tls whether the gateway speaks TLS
   */
  public record Running(ActorSystem<Void> system, int grpcPort, boolean tls) {}

  /**
   * Registers this node's device agent and the sharding regions.
   *
   * @return the checkpoint store they use, which also holds the jobs' models
   */
  public static CheckpointStore init(
      ActorSystem<?> system, KaonSettings settings, List<DeviceSlot> devices, TaskCatalog catalog) {
    // Only a worker node offers its devices: a census counting a gateway's or a coordinator's
    // cores would size generations for ranks that can never be placed there.
    boolean worker = org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().hasRole(DeviceWorker.ROLE);
    ActorRef<NodeAgent.Command> nodeAgent = system.systemActorOf(NodeAgent.create(worker ? devices : List.of()),
        "node-agent", org.apache.pekko.actor.typed.Props.empty());
    if (worker) {
      system.receptionist().tell(Receptionist.register(NodeAgent.SERVICE_KEY, nodeAgent));
    }
    CheckpointStore store = CheckpointStore.create(system, settings.checkpoint());
    DeviceWorker.init(system, nodeAgent, catalog, store, settings.worker());
    JobCoordinator.init(system, store, settings.job());
    return store;
  }

  /**
   * The devices of this machine: every GPU DJL sees, otherwise {@code cpu-slots} CPU slots (one
   * per core by default) of {@code threads-per-slot} threads each.
   */
  public static List<DeviceSlot> discoverDevices(KaonSettings settings) {
    int gpus = Engine.getEngine("PyTorch").getGpuCount();
    List<DeviceSlot> slots = new ArrayList<>();
    if (gpus > 0) {
      for (int i = 0; i < gpus; i++) {
        slots.add(new DeviceSlot("gpu:" + i, "gpu" + i, settings.threadsPerSlot()));
      }
      return slots;
    }
    int count = settings.cpuSlots() > 0
        ? settings.cpuSlots()
        : Math.max(1, Runtime.getRuntime().availableProcessors() / settings.threadsPerSlot());
    for (int i = 0; i < count; i++) {
      slots.add(new DeviceSlot("cpu:" + i, "cpu", settings.threadsPerSlot()));
    }
    return slots;
  }
}
