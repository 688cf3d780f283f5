package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.Set;
import java.util.stream.Collectors;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.RankPlacement;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two node JVMs with one device each form a cluster; a 2-worker job gets one worker on each (the
 * device-aware placement), its gradient chunks cross JVMs over Artery or the tensor link, as the
 * API's placement of its ranks shows, and it ends with exactly the parameters of the same job
 * trained by 2 workers inside one JVM.
 */
class TwoNodeTrainingTest {

  private static final Duration WAIT = Duration.ofMinutes(3);

  /** Both transports between nodes: Artery (the default) and the tensor link. */
  @ParameterizedTest
  @ValueSource(strings = {"artery", "link"})
  void aJobSpansTwoJvmsAndMatchesTheSingleJvmRunBitForBit(String transport, @TempDir Path dir) throws Exception {
    Path reference = dir.resolve("one-jvm.params");
    try (KaonProcess run = KaonProcess.start("two-nodes-reference-" + transport, "train", "--workers", "2", "--epochs", "1",
        "--max-steps", "200", "--checkpoint-every", "0", "--output", reference.toString())) {
      assertEquals(0, run.awaitExit(WAIT));
    }

    String token = UUID.randomUUID().toString();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token, "KAON_ALLREDUCE_TRANSPORT", transport));
    int seedPort = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    int portB = KaonProcess.freePort();
    Path distributed = dir.resolve("two-jvms.params");
    String jobId = "two-nodes-" + transport + "-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess a = KaonProcess.start("two-nodes-" + transport + "-a", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", Integer.toString(apiPort));
        KaonProcess b = KaonProcess.start("two-nodes-" + transport + "-b", env, "node", "--devices", "1",
            "--seed", "127.0.0.1:" + seedPort, "--port", Integer.toString(portB), "--roles", "worker")) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      String bearer = "Bearer " + token;
      KaonProcess.awaitMembersUp(cluster, bearer, 2, WAIT);

      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2)
                  .setEpochs(1).setMaxSteps(200).setCheckpointEverySteps(0));
      List<JobEvent> events = KaonProcess.watch(jobs, bearer, jobId, client).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.downloadModel(jobs, bearer, jobId, distributed, client);

      // One rank per node, each on the node's only device, and the chunks crossed between the nodes
      // the way the configuration says: the ranks of the job's one generation, as the final status
      // the watch got shows them.
      Job ended = last.getStatus();
      assertEquals(1, ended.getGeneration(), ended.toString());
      assertEquals(2, ended.getRanksCount(), ended.toString());
      assertEquals(Set.of("pekko://kaon@127.0.0.1:" + seedPort, "pekko://kaon@127.0.0.1:" + portB),
          ended.getRanksList().stream().map(RankPlacement::getNode).collect(Collectors.toSet()), ended.getRanksList().toString());
      for (RankPlacement rank : ended.getRanksList()) {
        assertEquals("cpu:0", rank.getDevice(), rank.toString());
        assertEquals(transport, rank.getEdge(), rank.toString());
      }
      jobs.close();
      cluster.close();
      b.stop();
      a.stop();
    } finally {
      client.terminate();
    }
    assertEquals(-1, Files.mismatch(reference, distributed), "the 2-JVM run differs from the 1-JVM run");
  }
}
