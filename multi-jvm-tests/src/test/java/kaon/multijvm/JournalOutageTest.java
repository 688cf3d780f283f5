package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import kaon.protocol.v1.ChaosServiceClient;
import kaon.protocol.v1.ClearFaultsRequest;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.InjectFaultRequest;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.RuntimeFault;
import kaon.protocol.v1.RuntimeFaultKind;
import kaon.protocol.v1.ScaleJobRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * Cassandra stops in the middle of a journal write: it is frozen (SIGSTOP) while the coordinator
 * writes an event, then killed, so the write never gets an answer. The job must keep answering
 * {@code GetJob} throughout, saying its journal is unavailable, and keep training: the same
 * generation throughout, every epoch reported, those that ended during the outage too. Once
 * Cassandra is back its events are recorded, a checkpoint is committed again, its health clears
 * within seconds, and it completes with each sample once.
 *
 * <p>Training must outlast the outage, whose end is Cassandra's start (20-30 s here), and it runs
 * twice as fast as usual once Cassandra no longer takes a core. A slow-rank fault (a sleep before
 * every step, through the node's chaos service) holds it back from the freeze until Cassandra
 * answers again, so that the job is still training then however fast this machine is.
 */
class JournalOutageTest {

  private static final Duration WAIT = Duration.ofMinutes(4);
  private static final Duration OUTAGE = Duration.ofSeconds(15);
  // The outage passes at most ~40 s x 20 steps/s = 800 steps (under the slow-rank fault); the
  // rest, about 1,900 steps, trains after it (12 s at 150 steps/s).
  private static final int EPOCHS = 6;
  private static final long SLEEP_PER_STEP_MS = 50;

  @Test
  void aJobLivesThroughCassandraStoppingInTheMiddleOfAnEventWrite() throws Exception {
    String token = UUID.randomUUID().toString();
    String chaosToken = "chaos-" + UUID.randomUUID();
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token, "KAON_CHAOS_RUNTIME_FAULTS", "on",
        "KAON_CHAOS_TOKEN", chaosToken));
    int api = KaonProcess.freePort();
    String jobId = "journal-outage-" + UUID.randomUUID().toString().substring(0, 8);
    String bearer = "Bearer " + token;
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try (KaonProcess node = KaonProcess.start("journal-outage", env, "node", "--devices", "2", "--api-port", Integer.toString(api))) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client)
          .withTls(false).withDeadline(Duration.ofSeconds(5));
      KaonProcess.awaitMembersUp(ClusterServiceClient.create(settings, client), bearer, 1, WAIT);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      KaonProcess.submit(jobs, bearer, jobId, JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1)
          .setMaxWorkers(2).setEpochs(EPOCHS).setCheckpointEverySteps(50));
      KaonProcess.awaitCheckpoint(jobs, bearer, jobId, WAIT);
      long checkpointBefore = getJob(jobs, bearer, jobId).getLatestCheckpoint().getStep();

      ChaosServiceClient chaos = ChaosServiceClient.create(settings, client);
      chaos.injectFault().addHeader("authorization", "Bearer " + chaosToken).invoke(InjectFaultRequest.newBuilder()
              .setFault(RuntimeFault.newBuilder().setKind(RuntimeFaultKind.SLOW_RANK).setJobId(jobId).setRank(-1)
                  .setDelayMs(SLEEP_PER_STEP_MS).setDurationMs(Duration.ofMinutes(3).toMillis())).build())
          .toCompletableFuture().get(10, TimeUnit.SECONDS);

      List<String> healthSeen = new ArrayList<>();
      Cassandra.freeze();
      try {
        // An owner command is written at once (its lease was confirmed within the last second):
        // this is the write Cassandra stops in the middle of. Its answer is not waited for.
        jobs.scaleJob().addHeader("authorization", bearer)
            .invoke(ScaleJobRequest.newBuilder().setJobId(jobId).setMinWorkers(1).setMaxWorkers(2).build());
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
        Cassandra.kill();
        long until = System.nanoTime() + OUTAGE.toNanos();
        while (System.nanoTime() < until) {
          // Every call answers, within its 5 s deadline, for the whole outage.
          Job job = getJob(jobs, bearer, jobId);
          healthSeen.add(job.getHealth());
          LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
        }
      } finally {
        Cassandra.start();
        chaos.clearFaults().addHeader("authorization", "Bearer " + chaosToken).invoke(ClearFaultsRequest.getDefaultInstance())
            .toCompletableFuture().get(10, TimeUnit.SECONDS);
      }
      long back = System.nanoTime();
      Job afterOutage = getJob(jobs, bearer, jobId);
      assertEquals(JobPhase.RUNNING, afterOutage.getPhase(), "the job should train past the outage: " + afterOutage);
      assertTrue(healthSeen.stream().anyMatch(h -> h.contains("journal unavailable since")),
          "the job never said its journal was unavailable: " + healthSeen);

      // Healthy again soon after Cassandra answers: the coordinator runs, its journal records.
      Job healthy = getJob(jobs, bearer, jobId);
      while (!healthy.getHealth().isEmpty() && healthy.getPhase() != JobPhase.SUCCEEDED) {
        assertTrue(System.nanoTime() - back < Duration.ofSeconds(30).toNanos(), "still degraded 30 s after Cassandra came back: "
            + healthy.getHealth());
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        healthy = getJob(jobs, bearer, jobId);
      }
      double recovered = (System.nanoTime() - back) / 1e9;
      // The checkpoints that failed while Cassandra was down are retried, and one is committed.
      Job checkpointed = KaonProcess.awaitJob(jobs, bearer, jobId,
          j -> j.getLatestCheckpoint().getStep() > checkpointBefore, "a checkpoint after step " + checkpointBefore, WAIT);

      JobServiceClient watching = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client).withTls(false), client);
      List<JobEvent> events = KaonProcess.watch(watching, bearer, jobId, client).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, EPOCHS);
      Job ended = last.getStatus();
      // Training was never restarted: the outage touched the journal and the store, not the ranks.
      assertEquals(1, ended.getGenerationsCount(), "training was restarted: " + ended.getGenerationsList());
      // Every epoch is reported, those that ended while the journal was away too, and the job's
      // accuracy is its last epoch's.
      assertEquals(EPOCHS, ended.getEpochsCount(), ended.getEpochsList().toString());
      for (int e = 0; e < EPOCHS; e++) {
        assertEquals(e + 1, ended.getEpochs(e).getEpoch(), ended.getEpochsList().toString());
      }
      assertEquals(ended.getEpochs(EPOCHS - 1).getTestAccuracy(), ended.getTestAccuracy(), 0.0, ended.toString());
      System.out.printf("journal outage in the middle of a write: GetJob answered %d times during %d s; healthy %.1f s after"
          + " Cassandra answered again; checkpoint of step %d before, %d after%n", healthSeen.size(), OUTAGE.toSeconds(), recovered,
          checkpointBefore, checkpointed.getLatestCheckpoint().getStep());
      assertTrue(recovered <= 10, "healthy only " + recovered + " s after Cassandra answered again");
      jobs.close();
      watching.close();
      node.stop();
    } finally {
      client.terminate();
    }
  }

  private static Job getJob(JobServiceClient jobs, String bearer, String jobId) throws Exception {
    return jobs.getJob().addHeader("authorization", bearer).invoke(GetJobRequest.newBuilder().setJobId(jobId).build())
        .toCompletableFuture().get(10, TimeUnit.SECONDS);
  }
}
