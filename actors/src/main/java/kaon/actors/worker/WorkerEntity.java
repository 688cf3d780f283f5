package kaon.actors.worker;

import java.time.Duration;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.training.TaskCatalog;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * Workers as sharded entities: one {@link DeviceWorker} per (job, member id), placed by the
 * device-aware allocation so that each lands on a node with a free device, and passivated by
 * itself once its run has ended and its reports are acknowledged.
 */
public final class WorkerEntity {

  /** Nodes with this role run workers (and own devices). */
  public static final String ROLE = "worker";

  /** Sharding key of worker entities; ids come from {@link #entityId}. */
  public static final EntityTypeKey<DeviceWorker.Command> ENTITY_KEY = EntityTypeKey.create(DeviceWorker.Command.class, "Worker");

  private WorkerEntity() {}

  /**
   * The entity id of worker {@code member} of job {@code jobId}. Member ids are stable: a worker
   * keeps its id (and its state) through generations while its rank may change.
   */
  public static String entityId(String jobId, int member) {
    return entityIdPrefix(jobId) + member;
  }

  /** What the entity ids of job {@code jobId}'s workers start with (device owners in a census). */
  public static String entityIdPrefix(String jobId) {
    return jobId + "-worker-";
  }

  /** Registers worker entities with sharding on this node. */
  public static void init(
      ActorSystem<?> system,
      ActorRef<NodeAgent.Command> nodeAgent,
      TaskCatalog catalog,
      CheckpointStore store,
      WorkerSettings settings) {
    RunThread.Factory threads = TrainingRun.factory(catalog, store, settings, system.scheduler(),
        kaon.actors.chaos.RuntimeFaults.get(system), kaon.actors.metrics.KaonMetrics.get(system));
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY,
            entity -> DeviceWorker.create(entity.getEntityId(), entity.getShard(),
                prepare -> ClusterSharding.get(system).entityRefFor(ENTITY_KEY, entity.getEntityId()).tell(prepare),
                nodeAgent, threads, store, settings))
        // A training worker gets no message for as long as its thread trains (the thread talks to
        // its peer and coordinator directly); idle-time passivation would stop it mid-job. It
        // passivates itself once its run has ended.
        .withSettings(workerShardingSettings(system))
        // One shard per worker, so that each is placed on its own by the device-aware strategy.
        .withMessageExtractor(new OneShardPerEntity<>())
        .withAllocationStrategy(new DeviceAwareAllocation(Adapter.toClassic(system)))
        .withRole(ROLE));
  }

  private static ClusterShardingSettings workerShardingSettings(ActorSystem<?> system) {
    ClusterShardingSettings settings = ClusterShardingSettings.create(system).withNoPassivationStrategy();
    // DeviceAwareAllocation moves only workers left without a device; looking every 2 s instead of
    // 10 lets a job that re-forms find them on a node with a free device at its next attempt.
    return settings.withTuningParameters(settings.tuningParameters().withRebalanceInterval(REBALANCE_INTERVAL));
  }

  private static final Duration REBALANCE_INTERVAL = Duration.ofSeconds(2);
}
