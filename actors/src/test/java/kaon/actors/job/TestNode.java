package kaon.actors.job;

import java.nio.file.Path;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.checkpoint.CheckpointSettings;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.training.TaskCatalog;
import kaon.actors.worker.DeviceSlot;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.NodeAgent;
import kaon.actors.worker.WorkerSettings;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/** A one-node cluster in a test kit: devices, worker and job regions, a real checkpoint store. */
final class TestNode {

  final ActorRef<NodeAgent.Command> nodeAgent;
  final CheckpointStore store;
  /**
   * The defaults, with shorter waits (a re-attach, a wait for devices), a look for devices every
   * second, re-formations 100-400 ms apart (jobs that diverge on purpose re-form five times: 30 s
   * each at production's 2-16 s); no lease.
   */
  static final JobSettings JOB_SETTINGS = JobSettings.fromConfig(ConfigFactory.parseString(
          "reattach-timeout = 3 s, census-timeout = 3 s, device-wait-interval = 3 s, persist-retry-min = 200 ms, "
              + "grow-look-interval = 1 s, fencing = off, reform-backoff-min = 50 ms, reform-backoff-max = 400 ms")
      .withFallback(ConfigFactory.defaultReference().getConfig("kaon.job")), "pekko.persistence.cassandra.journal");

  /** A node whose jobs write no model file (none of them names one). */
  TestNode(ActorTestKit testKit, int devices) {
    this(testKit, devices, Path.of("target", "models"));
  }

  /** A node whose rank 0 writes the model files its jobs name under {@code modelDir}. */
  TestNode(ActorTestKit testKit, int devices, Path modelDir) {
    Cluster cluster = Cluster.get(testKit.system());
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    List<DeviceSlot> slots = new ArrayList<>();
    for (int i = 0; i < devices; i++) {
      slots.add(new DeviceSlot("cpu:" + i, "cpu", 1));
    }
    // Where a real node's is: the device census asks the agent at its known path.
    nodeAgent = testKit.system().systemActorOf(NodeAgent.create(slots), NodeAgent.NAME,
        org.apache.pekko.actor.typed.Props.empty());
    store = CheckpointStore.create(testKit.system(), new CheckpointSettings(
        "kaon_test", true, 1, 64 * 1024, 4, 3, Duration.ofMillis(200), Duration.ofSeconds(2)));
    WorkerSettings settings = new WorkerSettings(
        new AllReduceSettings(16_384, Duration.ofSeconds(60), Duration.ofSeconds(5), 20), Duration.ofMillis(50), 1000, null, 1e4,
        modelDir, Duration.ofSeconds(10), Duration.ofSeconds(60), Duration.ofSeconds(3), false, 4);
    WorkerEntity.init(testKit.system(), nodeAgent, TaskCatalog.load(TestNode.class.getClassLoader()), store, settings);
    JobEntity.init(testKit.system(), store, JOB_SETTINGS);
  }
}
