package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.Optional;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The job's host around coordinators that stand in for the event-sourced one: one that never
 * finishes its recovery is stopped and started again, with the reason in the job's health; one
 * that recovers is left alone. The host probes the real Cassandra's journal session before it
 * starts a coordinator again.
 */
class JobHostTest {

  private static final ActorTestKit testKit = ActorTestKit.create("job-host");
  private static final Duration RECOVERY = Duration.ofMillis(700);
  private static final JobSettings SETTINGS = JobSettings.fromConfig(ConfigFactory.parseString(
          "recovery-timeout = " + RECOVERY.toMillis() + " ms, persist-retry-min = 50 ms, fencing = off")
      .withFallback(ConfigFactory.defaultReference().getConfig("kaon.job")), "pekko.persistence.cassandra.journal");

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  /** A coordinator that tells {@code started} it runs, recovers if {@code recovers}, and answers nothing. */
  private static Behavior<JobCoordinator.Command> standIn(ActorRef<JobCoordinator.Command> host,
      TestProbe<ActorRef<JobCoordinator.Command>> started, boolean recovers) {
    return Behaviors.setup(context -> {
      started.getRef().tell(context.getSelf());
      if (recovers) {
        host.tell(new JobCoordinator.Recovered(context.getSelf()));
      }
      return Behaviors.ignore();
    });
  }

  @Test
  void theLeaseIsTriedAgainAsSoonAsTheOtherOwnersRowCanHaveExpired() {
    Duration retry = Duration.ofSeconds(1);
    // Unknown: the usual interval.
    assertEquals(retry, JobHost.nextTake(retry, null));
    // Held for long (another cluster's coordinator renewing it): the usual interval.
    assertEquals(retry, JobHost.nextTake(retry, Duration.ofSeconds(4)));
    // The row's last-but-one second: when its last second starts.
    assertEquals(Duration.ofSeconds(1), JobHost.nextTake(retry, Duration.ofSeconds(2)));
    assertEquals(Duration.ofMillis(600), JobHost.nextTake(Duration.ofMillis(600), Duration.ofSeconds(2)));
    // Its last second (Cassandra does not say when in it), or already gone: poll.
    assertEquals(JobHost.LAST_SECOND_POLL, JobHost.nextTake(retry, Duration.ofSeconds(1)));
    assertEquals(JobHost.LAST_SECOND_POLL, JobHost.nextTake(retry, Duration.ZERO));
  }

  @Test
  void aCoordinatorWhoseRecoveryNeverCompletesIsStartedAgainAndTheHealthSaysWhy() {
    TestProbe<ActorRef<JobCoordinator.Command>> started = testKit.createTestProbe();
    ActorRef<JobCoordinator.Command> host = testKit.spawn(JobHost.create("stuck-recovery", SETTINGS, Optional.empty(),
        (self, reports) -> standIn(self, started, false)));
    ActorRef<JobCoordinator.Command> first = started.receiveMessage(Duration.ofSeconds(5));
    ActorRef<JobCoordinator.Command> second = started.receiveMessage(Duration.ofSeconds(15));
    assertTrue(!first.equals(second), "a new coordinator, not the stuck one");
    started.expectTerminated(first, Duration.ofSeconds(5));
    // The new one is stuck as well: the host answers for it, saying why it was started again.
    TestProbe<JobStatus> status = testKit.createTestProbe();
    status.awaitAssert(Duration.ofSeconds(15), () -> {
      host.tell(new JobCoordinator.GetStatus(status.getRef()));
      String health = status.receiveMessage(Duration.ofSeconds(5)).health();
      assertTrue(health.contains("its recovery did not complete within 700 ms, so it was stopped and is started again"), health);
      return null;
    });
    testKit.stop(host);
  }

  @Test
  void aCoordinatorThatRecoversIsLeftRunning() {
    TestProbe<ActorRef<JobCoordinator.Command>> started = testKit.createTestProbe();
    ActorRef<JobCoordinator.Command> host = testKit.spawn(JobHost.create("recovers", SETTINGS, Optional.empty(),
        (self, reports) -> standIn(self, started, true)));
    started.receiveMessage(Duration.ofSeconds(5));
    started.expectNoMessage(RECOVERY.multipliedBy(3));
    testKit.stop(host);
  }
}
