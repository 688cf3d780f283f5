package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.UUID;
import kaon.actors.checkpoint.CheckpointSettings;
import kaon.actors.checkpoint.CheckpointStore;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;

/** Storing rank 0's model: against the real Cassandra, and against one that cannot be reached. */
class ModelWriterTest {

  private static final CheckpointSettings SETTINGS =
      new CheckpointSettings("kaon_test", true, 1, 64 * 1024, 4, 3, Duration.ofMillis(100), Duration.ofSeconds(1));

  private static ActorTestKit testKit(String cassandra) {
    return ActorTestKit.create("model-writer", ConfigFactory.parseString(
            "pekko.actor.provider = local\n"
                + "datastax-java-driver.basic.contact-points = [\"" + cassandra + "\"]\n"
                + "datastax-java-driver.advanced.reconnect-on-init = false")
        .withFallback(ConfigFactory.load("application-test")));
  }

  @Test
  void reportsStoredOnceTheModelIsReadableUnderItsDigest() throws Exception {
    ActorTestKit testKit = testKit("127.0.0.1:9042");
    try {
      CheckpointStore store = CheckpointStore.create(testKit.system(), SETTINGS);
      byte[] model = new byte[150_000];
      model[7] = 7;
      String digest = CheckpointStore.checksum(model);
      String jobId = "writer-" + UUID.randomUUID();
      TestProbe<ModelWriter.Report> parent = testKit.createTestProbe();
      testKit.spawn(ModelWriter.create(store, jobId, 4, digest, model, parent.getRef()));
      assertEquals(new ModelWriter.Stored(4, digest, false), parent.receiveMessage(Duration.ofSeconds(30)));
      assertTrue(store.findModel(jobId, digest).toCompletableFuture().get().isPresent());
    } finally {
      testKit.shutdownTestKit();
    }
  }

  @Test
  void saysWhyWhileTheStoreCannotBeReachedAndKeepsTrying() {
    ActorTestKit testKit = testKit("127.0.0.1:1");
    try {
      CheckpointStore store = CheckpointStore.create(testKit.system(), SETTINGS);
      TestProbe<ModelWriter.Report> parent = testKit.createTestProbe();
      testKit.spawn(ModelWriter.create(store, "writer-" + UUID.randomUUID(), 2, "d1g3st", new byte[] {1}, parent.getRef()));
      ModelWriter.Report report = parent.receiveMessage(Duration.ofSeconds(30));
      assertTrue(report instanceof ModelWriter.Failing failing && failing.generation() == 2
          && failing.problem().startsWith("storing the trained model failing since "), report.toString());
      // Said once: the retries that follow do not repeat it, and nothing claims the model stored.
      parent.expectNoMessage(Duration.ofSeconds(2));
    } finally {
      testKit.shutdownTestKit();
    }
  }
}
