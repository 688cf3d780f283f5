package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.Row;
import com.typesafe.config.ConfigFactory;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/**
 * A forced split brain: two clusters that do not know each other share one journal, and both
 * try to run the same job (asked through their APIs, and through the remembered entities each
 * reads from the journal). The job's lease lets only one of them start its coordinator: the other
 * answers "unavailable" and never writes the job's journal, and the job completes with each
 * sample used once per epoch.
 */
class SplitBrainTest {

  private static final Duration WAIT = Duration.ofMinutes(4);

  @Test
  void twoClustersSharingAJournalNeverRunOneJobTwice() throws Exception {
    String token = UUID.randomUUID().toString();
    // The same journal keyspaces for both clusters: that is the split brain.
    Map<String, String> env = KaonProcess.isolated(Map.of("KAON_TOKEN", token));
    int apiA = KaonProcess.freePort();
    int apiB = KaonProcess.freePort();
    String jobId = "split-brain-" + UUID.randomUUID().toString().substring(0, 8);
    JobSpecification.Builder spec = JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1)
        .setMaxWorkers(2).setEpochs(5).setCheckpointEverySteps(100);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    // No --seed: each node is a cluster of its own.
    try (KaonProcess a = KaonProcess.start("split-brain-a", env, "node", "--devices", "2", "--api-port", Integer.toString(apiA));
        KaonProcess b = KaonProcess.start("split-brain-b", env, "node", "--devices", "2", "--api-port", Integer.toString(apiB))) {
      String bearer = "Bearer " + token;
      for (int api : List.of(apiA, apiB)) {
        KaonProcess.awaitMembersUp(ClusterServiceClient.create(
            GrpcClientSettings.connectToServiceAt("127.0.0.1", api, client).withTls(false), client), bearer, 1, WAIT);
      }
      JobServiceClient jobsA = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiA, client).withTls(false), client);
      // A short deadline: a gateway whose cluster cannot take the job's lease holds the request
      // for a moment first.
      JobServiceClient jobsB = JobServiceClient.create(GrpcClientSettings.connectToServiceAt("127.0.0.1", apiB, client)
          .withTls(false).withDeadline(Duration.ofSeconds(5)), client);
      // The job is submitted to A. Either cluster may end up running it: B learns of it too,
      // through the remembered entities its sharding reads from the shared journal.
      JobServiceClient runner = null;
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (runner == null) {
        assertTrue(System.nanoTime() < deadline, "neither cluster accepted the job within " + WAIT);
        for (JobServiceClient jobs : List.of(jobsA, jobsB)) {
          try {
            KaonProcess.submit(jobs, bearer, jobId, spec);
            runner = jobs;
            break;
          } catch (ExecutionException e) {
            Status.Code code = Status.fromThrowable(e.getCause()).getCode();
            assertTrue(code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED, e.getCause().toString());
          }
        }
      }
      JobServiceClient other = runner == jobsA ? jobsB : jobsA;
      // Watched without B's short deadline, which would end the watch of a job B runs after 5 s.
      JobServiceClient watcher = runner == jobsA ? jobsA : JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", apiB, client).withTls(false), client);
      var watched = KaonProcess.watch(watcher, bearer, jobId, client);
      KaonProcess.awaitCheckpoint(runner, bearer, jobId, WAIT);

      // The same submission to the other cluster while the job runs: it cannot take the job's
      // lease, so no coordinator starts there, and the call says so instead of starting a second.
      ExecutionException refused = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
          () -> KaonProcess.submit(other, bearer, jobId, spec));
      Status.Code code = Status.fromThrowable(refused.getCause()).getCode();
      assertTrue(code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED, refused.getCause().toString());

      List<JobEvent> events = watched.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      JobEvent last = events.get(events.size() - 1);
      assertEquals(JobPhase.SUCCEEDED, last.getStatus().getPhase(), last.toString());
      KaonProcess.assertEachSampleUsedOnce(last, 5);

      // Only one coordinator ever wrote the job's journal: one writer, contiguous sequence numbers.
      List<Long> sequence = new ArrayList<>();
      Set<UUID> writers = new HashSet<>();
      try (CqlSession cql = CqlSession.builder().addContactPoint(new InetSocketAddress("127.0.0.1", 9042))
          .withLocalDatacenter("datacenter1").build()) {
        for (Row row : cql.execute("SELECT sequence_nr, writer_uuid FROM " + env.get("KAON_JOURNAL_KEYSPACE")
            + ".messages WHERE persistence_id = ? AND partition_nr = 0", "Job|" + jobId)) {
          sequence.add(row.getLong("sequence_nr"));
          writers.add(UUID.fromString(row.getString("writer_uuid")));
        }
      }
      assertNotEquals(0, sequence.size());
      for (int i = 0; i < sequence.size(); i++) {
        assertEquals(i + 1, sequence.get(i), "sequence numbers " + sequence);
      }
      assertEquals(1, writers.size(), "writers of the job's journal: " + writers);
      System.out.printf("split brain: one coordinator (cluster %s) of %d events, the other cluster refused (%s)%n",
          runner == jobsA ? "A" : "B", sequence.size(), code);
      jobsA.close();
      jobsB.close();
      if (watcher != jobsA) {
        watcher.close();
      }
      a.stop();
      b.stop();
    } finally {
      client.terminate();
    }
  }
}
