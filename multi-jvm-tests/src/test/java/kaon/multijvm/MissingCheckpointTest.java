package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.Row;
import com.typesafe.config.ConfigFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * The newest checkpoint a job's journal records as committed is missing from the store when the
 * job resumes (deleted while its node was down). The job must skip it, say so in the generation's
 * reason, resume from the checkpoint before it, and complete, instead of retrying the missing one
 * for ever.
 */
class MissingCheckpointTest {

  private static final Duration WAIT = Duration.ofMinutes(4);
  private static final int EPOCHS = 2;

  @Test
  void aJobWhoseNewestCheckpointIsGoneResumesFromThePreviousOne() throws Exception {
    String token = UUID.randomUUID().toString();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    String jobId = "missing-checkpoint-" + UUID.randomUUID().toString().substring(0, 8);
    String bearer = "Bearer " + token;
    long newest;
    int victimApi = KaonProcess.freePort();
    try (KaonProcess victim = KaonProcess.start("missing-checkpoint-victim", env, "node", "--devices", "2",
        "--api-port", Integer.toString(victimApi))) {
      ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
          ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
      try {
        GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", victimApi, client).withTls(false);
        KaonProcess.awaitMembersUp(ClusterServiceClient.create(settings, client), bearer, 1, WAIT);
        JobServiceClient jobs = JobServiceClient.create(settings, client);
        KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2)
            .setMaxWorkers(2).setEpochs(EPOCHS).setCheckpointEverySteps(50));
        // Frozen right after a commit is seen, then killed. A commit that slips in between (the
        // next is 50 steps away) changes nothing: every checkpoint from the one seen on is deleted.
        newest = KaonProcess.awaitJob(jobs, bearer, jobId,
            j -> j.hasLatestCheckpoint() && j.getLatestCheckpoint().getStep() >= 200, "a checkpoint at step 200 or later",
            WAIT).getLatestCheckpoint().getStep();
        victim.hang();
      } finally {
        client.terminate();
      }
      victim.kill();
    }

    String previousId;
    try (CqlSession cql = CqlSession.builder().addContactPoint(new InetSocketAddress("127.0.0.1", 9042))
        .withLocalDatacenter("datacenter1").build()) {
      // The newest committed one goes, with any written after it that its journal never recorded.
      previousId = null;
      for (Row row : cql.execute("SELECT step, checkpoint_id FROM kaon.checkpoints WHERE job_id = ?", jobId).all()) {
        long step = row.getLong("step");
        if (step >= newest) {
          cql.execute("DELETE FROM kaon.checkpoints WHERE job_id = ? AND step = ? AND checkpoint_id = ?", jobId, step,
              row.getString("checkpoint_id"));
        } else if (step == newest - 50) {
          previousId = row.getString("checkpoint_id");
        }
      }
    }
    assertTrue(previousId != null, "no checkpoint at step " + (newest - 50));

    int api = KaonProcess.freePort();
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess node = KaonProcess.start("missing-checkpoint-node", env, "node", "--devices", "2",
        "--api-port", Integer.toString(api))) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client).withTls(false);
      KaonProcess.awaitMembersUp(ClusterServiceClient.create(settings, client), bearer, 1, WAIT);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      List<JobEvent> events = KaonProcess.watch(jobs, bearer, jobId, client).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, EPOCHS);
      Generation resumed = last.getStatus().getGenerationsList().stream()
          .filter(g -> g.getStateSource().startsWith("checkpoint:")).findFirst()
          .orElseThrow(() -> new AssertionError("no generation resumed from a checkpoint: " + last));
      assertEquals("checkpoint:" + previousId, resumed.getStateSource(), resumed.toString());
      assertEquals(newest - 50, resumed.getResumeStep(), resumed.toString());
      assertTrue(resumed.getReason().contains("skipped damaged checkpoints") && resumed.getReason().contains("does not exist"),
          resumed.getReason());
      System.out.printf("missing checkpoint: step %d skipped, resumed from step %d; job succeeded%n", newest, newest - 50);
      jobs.close();
      node.stop();
    } finally {
      client.terminate();
    }
  }
}
