package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Durability with real processes and a real Cassandra: the only node of a cluster is SIGKILLed in
 * the middle of a job, and a new node, told nothing, finds the job in the journal, resumes it from
 * its last checkpoint and ends with the very bits of an uninterrupted run. (A Cassandra outage
 * while a job trains is {@link JournalOutageTest}.)
 */
class DurableJobTest {

  private static final Duration JOB = Duration.ofMinutes(4);
  private static final int STEPS = 1100;

  @Test
  void aJobResumesByItselfAfterItsNodeIsKilledAndEndsBitIdentical(@TempDir Path dir) throws Exception {
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    // The reference: the same job, uninterrupted, through `kaon train` (its exit code and its file).
    Path reference = dir.resolve("reference.params");
    try (KaonProcess run = KaonProcess.start("resume-reference", "train", "--job-id", "reference-" + suffix, "--workers", "2",
        "--epochs", "3", "--max-steps", Integer.toString(STEPS), "--checkpoint-every", "100", "--optimizer", "sgd",
        "--momentum", "0.9", "--threads-per-worker", "1", "--output", reference.toString())) {
      assertEquals(0, run.awaitExit(JOB));
    }

    String jobId = "crash-" + suffix;
    String token = UUID.randomUUID().toString();
    String bearer = "Bearer " + token;
    // The victim and the node after it share journal keyspaces no other test uses.
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    int api = KaonProcess.freePort();
    String[] node = {"node", "--devices", "2", "--threads-per-worker", "1", "--api-port", Integer.toString(api)};
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client).withTls(false);
      long killedAfter;
      try (KaonProcess victim = KaonProcess.start("resume-victim", env, node)) {
        ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
        JobServiceClient jobs = JobServiceClient.create(settings, client);
        KaonProcess.awaitMembersUp(cluster, bearer, 1, JOB);
        KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(2)
            .setMaxWorkers(2).setEpochs(3).setMaxSteps(STEPS).setCheckpointEverySteps(100).setOptimizer("sgd").setMomentum(0.9f));
        Job checkpointed = KaonProcess.awaitJob(jobs, bearer, jobId, Job::hasLatestCheckpoint, "a checkpoint", JOB);
        killedAfter = checkpointed.getLatestCheckpoint().getStep();
        victim.kill();
        assertTrue(killedAfter < STEPS, "checkpoint " + killedAfter + " of a job of " + STEPS + " steps");
        jobs.close();
        cluster.close();
      }

      // A new node in the same API port's place, told nothing about the job: it must find it in the
      // journal and resume it on its own.
      Path resumed = dir.resolve("resumed.params");
      try (KaonProcess after = KaonProcess.start("resume-node", env, node)) {
        JobServiceClient jobs = JobServiceClient.create(settings, client);
        Job ended = KaonProcess.awaitJob(jobs, bearer, jobId,
            j -> j.getPhase() == JobPhase.SUCCEEDED || j.getPhase() == JobPhase.FAILED || j.getPhase() == JobPhase.CANCELLED,
            "end", JOB);
        assertEquals(JobPhase.SUCCEEDED, ended.getPhase(), ended.toString());
        // Its last generation came from a checkpoint at least as late as the one seen before the kill
        // (one more may have been committed in between), not from the start.
        Generation last = ended.getGenerations(ended.getGenerationsCount() - 1);
        assertTrue(ended.getGenerationsCount() >= 2, ended.toString());
        assertTrue(last.getStateSource().startsWith("checkpoint:"), last.toString());
        assertTrue(last.getResumeStep() >= killedAfter && last.getResumeStep() < STEPS, last + " after the checkpoint of step " + killedAfter);
        // The killed node's client never got the model; any client can download it from the new node.
        KaonProcess.downloadModel(jobs, bearer, jobId, resumed, client);
        jobs.close();
        after.stop();
      }
      // Same seed, same thread count: the interruption must not change a single bit.
      long mismatch = Files.mismatch(reference, resumed);
      if (mismatch != -1) {
        // Kept for a post-mortem: the logs say how each run went, the files by how much they differ.
        Files.copy(reference, KaonProcess.LOGS.resolve("resume-reference.params"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(resumed, KaonProcess.LOGS.resolve("resume-resumed.params"), StandardCopyOption.REPLACE_EXISTING);
      }
      assertEquals(-1, mismatch, "resumed parameters differ from the uninterrupted run (" + Files.size(reference)
          + " and " + Files.size(resumed) + " bytes); runs: " + KaonProcess.summary("resume-reference", "resume-victim", "resume-node"));
    } finally {
      client.terminate();
    }
  }
}
