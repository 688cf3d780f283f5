package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskCatalog;
import kaon.actors.worker.DeviceSlot;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.NodeAgent;
import kaon.actors.worker.WorkerSettings;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.pattern.StatusReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The job entity's life: submit, finish, stop and recover from its journal, refusals. */
class JobCoordinatorTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static ActorRef<NodeAgent.Command> nodeAgent;

  @BeforeAll
  static void startNode() {
    Cluster cluster = Cluster.get(testKit.system());
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    nodeAgent = testKit.spawn(NodeAgent.create(List.of(
        new DeviceSlot("cpu:0", "cpu", 1), new DeviceSlot("cpu:1", "cpu", 1))), "node-agent");
    WorkerSettings settings = new WorkerSettings(
        new AllReduceSettings(65_536, Duration.ofSeconds(60), Duration.ofSeconds(5), 20),
        Duration.ofMillis(50), 1000, null);
    DeviceWorker.init(testKit.system(), nodeAgent, TaskCatalog.load(JobCoordinatorTest.class.getClassLoader()), settings);
  }

  /** Workers give their devices back asynchronously; the next test must find them free. */
  @AfterEach
  void awaitDevicesFree() {
    TestProbe<NodeAgent.Devices> probe = testKit.createTestProbe();
    probe.awaitAssert(WAIT, () -> {
      nodeAgent.tell(new NodeAgent.ListDevices(probe.getRef()));
      NodeAgent.Devices devices = probe.receiveMessage();
      devices.devices().forEach(d -> assertEquals("", d.owner(), d.slot().id() + " still owned"));
      return null;
    });
  }

  @AfterAll
  static void stopNode() {
    testKit.shutdownTestKit();
  }

  private static JobSpec spec(String task, int workers, long maxSteps) {
    return new JobSpec(task, workers, 2, 128, OptimizerSpec.sgd(0.1f, 0f), 7, maxSteps, "");
  }

  private static JobStatus submit(ActorRef<JobCoordinator.Command> job, JobSpec spec) {
    TestProbe<StatusReply<JobStatus>> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(spec, reply.getRef()));
    StatusReply<JobStatus> answer = reply.receiveMessage(WAIT);
    assertTrue(answer.isSuccess(), () -> "submit refused: " + answer.getError());
    return answer.getValue();
  }

  private static JobStatus status(ActorRef<JobCoordinator.Command> job) {
    TestProbe<JobStatus> probe = testKit.createTestProbe();
    job.tell(new JobCoordinator.GetStatus(probe.getRef()));
    return probe.receiveMessage(WAIT);
  }

  @Test
  void finishedJobRecoversFromItsJournalAfterARestart() {
    ActorRef<JobCoordinator.Command> job = testKit.spawn(JobCoordinator.create("recover-1"));
    TestProbe<JobCoordinator.JobUpdate> watcher = testKit.createTestProbe();
    submit(job, spec("fashion-mnist-mlp", 2, 700));
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    JobStatus finished = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.SUCCEEDED, finished.phase(), finished.message());
    // 700 steps: one full epoch (468) and a partial second one, both reported.
    assertEquals(2, finished.epochs().size());
    assertEquals(700, finished.stepsDone());
    assertTrue(finished.testAccuracy() > 0.75, "test accuracy " + finished.testAccuracy());

    testKit.stop(job);
    ActorRef<JobCoordinator.Command> respawned = testKit.spawn(JobCoordinator.create("recover-1"));
    JobStatus recovered = status(respawned);
    assertEquals(finished, recovered);
  }

  @Test
  void cancellingAFinishedJobIsRefused() {
    ActorRef<JobCoordinator.Command> job = testKit.spawn(JobCoordinator.create("cancel-late"));
    TestProbe<JobCoordinator.JobUpdate> watcher = testKit.createTestProbe();
    submit(job, spec("fashion-mnist-mlp", 1, 5));
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    assertEquals(JobStatus.Phase.SUCCEEDED, DataParallelEquivalenceTest.awaitEnd(watcher).phase());
    TestProbe<StatusReply<JobStatus>> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Cancel(reply.getRef()));
    String error = reply.receiveMessage(WAIT).getError().getMessage();
    assertTrue(error.contains("already ended: SUCCEEDED"), error);
  }

  @Test
  void resubmittingTheSameSpecIsIdempotentButAnotherSpecIsRefused() {
    ActorRef<JobCoordinator.Command> job = testKit.spawn(JobCoordinator.create("idempotent"));
    JobSpec spec = spec("fashion-mnist-mlp", 1, 5);
    JobStatus first = submit(job, spec);
    JobStatus second = submit(job, spec);
    assertEquals(first.jobId(), second.jobId());
    assertEquals(1, second.generation());
    TestProbe<StatusReply<JobStatus>> reply = testKit.createTestProbe();
    job.tell(new JobCoordinator.Submit(spec("fashion-mnist-mlp", 2, 5), reply.getRef()));
    assertTrue(reply.receiveMessage(WAIT).getError().getMessage().contains("another spec"));
  }

  @Test
  void anUnknownTaskFailsTheJobWithAClearReason() {
    ActorRef<JobCoordinator.Command> job = testKit.spawn(JobCoordinator.create("unknown-task"));
    TestProbe<JobCoordinator.JobUpdate> watcher = testKit.createTestProbe();
    submit(job, spec("no-such-task", 1, 5));
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    JobStatus failed = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.FAILED, failed.phase());
    assertTrue(failed.message().contains("unknown task 'no-such-task'"), failed.message());
  }

  @Test
  void aJobNeedingMoreDevicesThanTheNodeHasFailsWithTheReason() {
    ActorRef<JobCoordinator.Command> job = testKit.spawn(JobCoordinator.create("too-big"));
    TestProbe<JobCoordinator.JobUpdate> watcher = testKit.createTestProbe();
    submit(job, spec("fashion-mnist-mlp", 3, 5));
    job.tell(new JobCoordinator.Watch(watcher.getRef()));
    JobStatus failed = DataParallelEquivalenceTest.awaitEnd(watcher);
    assertEquals(JobStatus.Phase.FAILED, failed.phase());
    assertTrue(failed.message().contains("no device"), failed.message());
  }
}
