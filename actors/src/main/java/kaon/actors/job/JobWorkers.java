package kaon.actors.job;

import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.worker.DeviceCensus;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.NodeAgent;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * How a job's coordinator reaches its workers and counts the cluster's devices: through sharding
 * and the node agents in a cluster, through test probes in a test of the coordinator alone.
 */
interface JobWorkers {

  /** Worker {@code member} of the job. */
  RecipientRef<DeviceWorker.Command> member(int member);

  /** The cluster's devices and their owners, each node asked within {@code JobSettings#censusTimeout}. */
  default CompletionStage<List<DeviceCensus.NodeDevices>> census() {
    return census(Set.of());
  }

  /** A census that counts the nodes at {@code lostNodes} (addresses) with no devices, without asking them. */
  CompletionStage<List<DeviceCensus.NodeDevices>> census(Set<String> lostNodes);

  /** Tells {@code subscriber} when the process of {@code node} ends (see {@link NodeLiveness}). */
  void watchNode(NodeLiveness.Endpoint node, ActorRef<NodeLiveness.NodeGone> subscriber);

  /** {@code subscriber} hears of no node any more. */
  void unwatchNodes(ActorRef<NodeLiveness.NodeGone> subscriber);

  /**
   * Tells every worker node's agent that this job trains {@code task}, so that those with a free
   * device ready themselves for a rank of it ({@link kaon.actors.worker.NodeAgent.WarmTask}; each
   * node decides whether it does). Nothing is answered or awaited.
   */
  void warm(String task);

  /** Tells {@code subscriber} of each node that joins the cluster from now on. */
  void onNodeUp(ActorRef<ClusterEvent.MemberUp> subscriber);

  /** Tells {@code subscriber} of each node that asks to join, before it is up (see {@link #warm}). */
  void onNodeJoining(ActorRef<ClusterEvent.MemberJoined> subscriber);

  /** The workers of job {@code jobId} as sharded entities, and a census of every node's agent. */
  static JobWorkers sharded(ActorSystem<?> system, String jobId, JobSettings settings) {
    ClusterSharding sharding = ClusterSharding.get(system);
    return new JobWorkers() {
      @Override
      public RecipientRef<DeviceWorker.Command> member(int member) {
        return sharding.entityRefFor(WorkerEntity.ENTITY_KEY, WorkerEntity.entityId(jobId, member));
      }

      @Override
      public CompletionStage<List<DeviceCensus.NodeDevices>> census(Set<String> lostNodes) {
        return DeviceCensus.take(system, settings.censusTimeout(), lostNodes);
      }

      @Override
      public void watchNode(NodeLiveness.Endpoint node, ActorRef<NodeLiveness.NodeGone> subscriber) {
        NodeLiveness.get(system).watch(node, subscriber);
      }

      @Override
      public void unwatchNodes(ActorRef<NodeLiveness.NodeGone> subscriber) {
        NodeLiveness.get(system).unwatch(subscriber);
      }

      @Override
      public void warm(String task) {
        // A joining node is told too: its warm-up then runs while the cluster moves it to up and
        // the job grows onto it, instead of after.
        for (org.apache.pekko.actor.Address node
            : NodeAgent.workerNodes(system, Set.of(MemberStatus.joining(), MemberStatus.weaklyUp(), MemberStatus.up()))) {
          NodeAgent.on(system, node).tell(new NodeAgent.WarmTask(task), org.apache.pekko.actor.ActorRef.noSender());
        }
      }

      @Override
      public void onNodeUp(ActorRef<ClusterEvent.MemberUp> subscriber) {
        Cluster.get(system).subscriptions().tell(Subscribe.create(subscriber, ClusterEvent.MemberUp.class));
      }

      @Override
      public void onNodeJoining(ActorRef<ClusterEvent.MemberJoined> subscriber) {
        Cluster.get(system).subscriptions().tell(Subscribe.create(subscriber, ClusterEvent.MemberJoined.class));
      }
    };
  }
}
