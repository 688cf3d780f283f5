package kaon.actors.job;

import com.typesafe.config.Config;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.lease.CassandraLease;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * A job as a sharded entity: a {@link JobHost} that holds the job's lease and runs its {@link
 * JobCoordinator}, with the coordinator's ways out of itself (its workers as sharded entities, its
 * checkpoints in the store, passivation, the lease, the journal's session). One entity per job,
 * remembered by sharding while the job runs, so that a restarted cluster restarts it without
 * anyone asking; a job leaves the set when it ends.
 */
public final class JobEntity {

  /** Nodes with this role host jobs. */
  public static final String ROLE = "coordinator";

  /** Sharding key of job entities; the entity id is the job id. */
  public static final EntityTypeKey<JobCoordinator.Command> ENTITY_KEY =
      EntityTypeKey.create(JobCoordinator.Command.class, JobCoordinator.ENTITY_TYPE);

  private JobEntity() {}

  /** Registers job entities with sharding on this node. */
  public static void init(ActorSystem<?> system, CheckpointStore store, JobSettings settings) {
    ClusterShardingSettings sharded = ClusterShardingSettings.create(system)
        // Running jobs are remembered: after a crash of the whole cluster, their shards and the
        // entities themselves start again without being asked.
        .withRememberEntities(true)
        // A job can be quiet for longer than the idle timeout (a slow epoch); passivating it
        // would drop its forming generation and its watchers.
        .withNoPassivationStrategy();
    // The lease is the job's, taken by its host while the job's entity lives, not the shard's
    // (sharding's use-lease): a shard outlives its jobs, and would renew the leases of every job
    // that ever ran, once a second each, for as long as the cluster runs.
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId(), entity.getShard(), store, settings))
        .withSettings(sharded)
        .withStopMessage(JobHost.Stop.INSTANCE)
        .withAllocationStrategy(new JobPlacement(org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system)))
        .withRole(ROLE));
  }

  /**
   * Job {@code jobId}'s entity; {@code shard} is null when it does not run under sharding (then
   * it takes no lease and never passivates).
   */
  public static Behavior<JobCoordinator.Command> create(String jobId, ActorRef<ClusterSharding.ShardCommand> shard,
      CheckpointStore store, JobSettings settings) {
    return Behaviors.setup(context -> {
      ActorSystem<?> system = context.getSystem();
      Optional<CassandraLease> lease = shard == null || settings.leaseConfigPath().isEmpty()
          ? Optional.empty()
          : CassandraLease.forJob(system, settings.leaseConfigPath(), jobId);
      return JobHost.create(jobId, settings, lease, (host, reports) -> JobCoordinator.create(jobId, host, reports,
          JobWorkers.sharded(system, jobId, settings), JobCheckpoints.in(store, jobId), settings,
          effects(system, jobId, host, shard, lease, settings)));
    });
  }

  private static JobEffects effects(ActorSystem<?> system, String jobId, ActorRef<JobCoordinator.Command> host,
      ActorRef<ClusterSharding.ShardCommand> shard, Optional<CassandraLease> lease, JobSettings settings) {
    Config journal = system.settings().config().getConfig(settings.journalSession() + ".journal");
    String table = journal.getString("keyspace") + "." + journal.getString("table");
    long partitionSize = journal.getLong("target-partition-size");
    return new JobEffects() {
      @Override
      public boolean passivate() {
        // Not while the node shuts down: the job must be remembered and resume when it comes back.
        if (shard == null || CoordinatedShutdown.get(system).getShutdownReason().isPresent()) {
          return false;
        }
        shard.tell(new ClusterSharding.Passivate<>(host));
        return true;
      }

      @Override
      public CompletionStage<?> confirmLease() {
        if (lease.isEmpty()) {
          return CompletableFuture.completedFuture(null);
        }
        return lease.get().confirm().thenApply(ours -> {
          if (!ours) {
            throw new LeaseLostException(lease.get() + " is held by another coordinator");
          }
          return ours;
        });
      }

      @Override
      public boolean leaseUnconfirmed() {
        return lease.isPresent() && !lease.get().checkLease();
      }

      @Override
      public CompletionStage<?> pingJournal() {
        return JournalProbe.ping(system, settings.journalSession());
      }

      @Override
      public CompletionStage<Boolean> eventDurable(long sequenceNr) {
        return JournalProbe.eventExists(system, settings.journalSession(), table, JobCoordinator.ENTITY_TYPE + "|" + jobId,
            sequenceNr, partitionSize);
      }

      @Override
      public String nodeAddress() {
        return system.address().toString();
      }
    };
  }
}
