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
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/**
 * A Kaon node: an actor system in the cluster with this node's devices, the worker and job
 * sharding regions, and (later) the gRPC gateway. {@link #init} is what tests reuse.
 */
public final class KaonNode {

  /** Name of the actor system; every node of a cluster must use the same. */
  public static final String SYSTEM_NAME = "kaon";

  private KaonNode() {}

  /**
   * Starts a single-node cluster that joins itself: the local mode of {@code kaon train} and
   * {@code kaon node}. Cassandra (embedded unless configured) and device discovery block; both
   * happen here, before any actor runs.
   */
  public static ActorSystem<Void> startLocal(Config config, TaskCatalog catalog, java.util.function.Consumer<String> say) {
    Config withCassandra = CassandraConnection.prepare(config, say);
    KaonSettings settings = KaonSettings.fromConfig(withCassandra);
    List<DeviceSlot> devices = discoverDevices(settings);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), SYSTEM_NAME, withCassandra);
    Cluster cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    init(system, settings, devices, catalog);
    return system;
  }

  /** Registers this node's device agent and the sharding regions. */
  public static void init(
      ActorSystem<?> system, KaonSettings settings, List<DeviceSlot> devices, TaskCatalog catalog) {
    ActorRef<NodeAgent.Command> nodeAgent = system.systemActorOf(NodeAgent.create(devices), "node-agent",
        org.apache.pekko.actor.typed.Props.empty());
    CheckpointStore store = CheckpointStore.create(system, settings.checkpoint());
    DeviceWorker.init(system, nodeAgent, catalog, store, settings.worker());
    JobCoordinator.init(system, store, settings.job());
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
