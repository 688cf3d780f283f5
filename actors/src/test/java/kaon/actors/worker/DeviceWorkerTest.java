package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * One worker with a fake training thread: the test plays the thread (its events) and the
 * coordinator (a probe), and a real node agent hands out the devices. Each test is one rule of a
 * worker's life; none trains, and together they take about a second.
 */
class DeviceWorkerTest {

  private static final ActorTestKit testKit = ActorTestKit.create(
      ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.defaultReference()));
  private static final Duration WAIT = Duration.ofSeconds(5);
  private static final AtomicInteger workers = new AtomicInteger();
  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 1, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 0, "", 0);
  private static final WorkerSettings SETTINGS = new WorkerSettings(
      new AllReduceSettings(16_384, Duration.ofSeconds(60), Duration.ofSeconds(5), 20, AllReduceSettings.Transport.ARTERY),
      Duration.ofMillis(200), 1000, null, 1e4, Path.of("target", "models"), Duration.ofSeconds(2), Duration.ofSeconds(60),
      Duration.ofMillis(200), false, 4);

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  /** The training thread as the test plays it: what the worker ordered, and a way to answer. */
  private static final class FakeThread implements RunThread {
    final BlockingQueue<Object> orders = new LinkedBlockingQueue<>();
    volatile ActorRef<RunEvent> events;
    final AtomicInteger started = new AtomicInteger();

    RunThread.Factory factory() {
      return (name, device, events) -> {
        this.events = events;
        started.incrementAndGet();
        return this;
      };
    }

    @Override
    public void assign(Assignment assignment) {
      orders.add(assignment);
    }

    @Override
    public void begin(Start start) {
      orders.add(start);
    }

    @Override
    public void requestStop(long generation) {
      orders.add("stop " + generation);
    }

    @Override
    public void release() {
      orders.add("release");
    }

    <T> T next(Class<T> type) throws InterruptedException {
      while (true) {
        Object order = orders.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (order == null) {
          throw new AssertionError("no " + type.getSimpleName() + " ordered");
        }
        if (type.isInstance(order)) {
          return type.cast(order);
        }
      }
    }

    void tell(RunEvent event) {
      events.tell(event);
    }
  }

  /** A worker with a node agent of {@code devices} devices. */
  private final class Fixture {
    // A job of its own: the node's shared reductions are keyed by job and generation.
    final String jobId = "job-" + workers.incrementAndGet();
    final String entityId = jobId + "-worker-0";
    final FakeThread thread = new FakeThread();
    final TestProbe<ClusterSharding.ShardCommand> shard = testKit.createTestProbe();
    /** What the worker hands back to sharding for its next incarnation. */
    final TestProbe<DeviceWorker.Command> throughSharding = testKit.createTestProbe();
    final TestProbe<WorkerReport> coordinator = testKit.createTestProbe();
    final TestProbe<RingMessage> peer = testKit.createTestProbe();
    final ActorRef<NodeAgent.Command> agent;
    final ActorRef<DeviceWorker.Command> worker;

    Fixture(int devices) {
      List<DeviceSlot> slots = new java.util.ArrayList<>();
      for (int i = 0; i < devices; i++) {
        slots.add(new DeviceSlot("cpu:" + i, "cpu", 1));
      }
      agent = testKit.spawn(NodeAgent.create(slots));
      worker = testKit.spawn(DeviceWorker.create(entityId, shard.getRef(), throughSharding.getRef()::tell, agent,
          thread.factory(), null, SETTINGS));
    }

    DeviceWorker.Prepare prepare(long generation, int rank) {
      return new DeviceWorker.Prepare(jobId, SPEC, generation, rank, 2, coordinator.getRef(), "", 0, false);
    }

    /** Prepares generation {@code generation}, the replica gets ready, the ring begins. */
    void training(long generation) throws InterruptedException {
      worker.tell(prepare(generation, 0));
      thread.next(RunThread.Assignment.class);
      thread.tell(new RunEvent.ReplicaReady(generation, false));
      coordinator.expectMessageClass(WorkerReport.Ready.class, WAIT);
      coordinator.expectMessageClass(WorkerReport.Placed.class, WAIT);
      worker.tell(new DeviceWorker.Begin(generation, List.of(peer.getRef()), -1, 0));
      thread.next(RunThread.Start.class);
    }

    String owner() {
      TestProbe<NodeAgent.Devices> devices = testKit.createTestProbe();
      agent.tell(new NodeAgent.ListDevices(devices.getRef()));
      return devices.receiveMessage(WAIT).devices().get(0).owner();
    }

    DeviceWorker.HeldState askState(long generation) {
      TestProbe<DeviceWorker.HeldState> answer = testKit.createTestProbe();
      worker.tell(new DeviceWorker.AskState(generation, answer.getRef()));
      return answer.receiveMessage(WAIT);
    }
  }

  @Test
  void aPreparedRankTakesADeviceAndSaysItIsReadyOnceItsReplicaIs() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.worker.tell(f.prepare(1, 0));
    RunThread.Assignment assigned = f.thread.next(RunThread.Assignment.class);
    assertEquals(1, assigned.generation());
    assertEquals(f.entityId, f.owner());
    f.coordinator.expectNoMessage(Duration.ofMillis(100));
    f.thread.tell(new RunEvent.ReplicaReady(1, true));
    WorkerReport.Ready ready = f.coordinator.expectMessageClass(WorkerReport.Ready.class, WAIT);
    assertEquals("cpu:0", ready.device());
    assertTrue(ready.needsState());
  }

  @Test
  void aRankSaysWhereItRunsWhenReadyAndHowItsChunksTravelOnceItsRingIsConnected() throws InterruptedException {
    Fixture f = new Fixture(1);
    String node = testKit.system().address().toString();
    NodeLiveness.Endpoint liveness = NodeLiveness.get(testKit.system()).endpoint();
    // A ring of one: nothing to exchange, so it takes the shared-memory path, which returns at once.
    f.worker.tell(new DeviceWorker.Prepare(f.jobId, SPEC, 1, 0, 1, f.coordinator.getRef(), "", 0, false));
    f.thread.next(RunThread.Assignment.class);
    f.thread.tell(new RunEvent.ReplicaReady(1, false));
    f.coordinator.expectMessageClass(WorkerReport.Ready.class, WAIT);
    assertEquals(new WorkerReport.Placed(1, 0, node, "cpu:0", "", "", liveness),
        f.coordinator.expectMessageClass(WorkerReport.Placed.class, WAIT), "ready: no ring yet");
    f.worker.tell(new DeviceWorker.Begin(1, List.of(f.peer.getRef()), -1, 0));
    WorkerReport.Placed connected = f.coordinator.expectMessageClass(WorkerReport.Placed.class, WAIT);
    assertEquals(new WorkerReport.Placed(1, 0, node, "cpu:0", "shared-memory",
        "every rank runs in this JVM: each sums one segment of all ranks' buffers, no chunks", liveness), connected);
    // A coordinator that recovers hears it again.
    TestProbe<WorkerReport> recovered = testKit.createTestProbe();
    f.worker.tell(new DeviceWorker.Reattach(1, recovered.getRef()));
    assertEquals(new WorkerReport.Reattached(1, 0), recovered.receiveMessage(WAIT));
    assertEquals(connected, recovered.receiveMessage(WAIT));
  }

  @Test
  void ranksOfARingAllInThisJvmSumInSharedMemorySaySoAndAStopEndsTheirWait() throws InterruptedException {
    Fixture f = new Fixture(1);
    TestProbe<RingMessage> other = testKit.createTestProbe();
    f.worker.tell(f.prepare(1, 0));
    f.thread.next(RunThread.Assignment.class);
    f.thread.tell(new RunEvent.ReplicaReady(1, false));
    f.coordinator.expectMessageClass(WorkerReport.Ready.class, WAIT);
    f.coordinator.expectMessageClass(WorkerReport.Placed.class, WAIT);
    f.worker.tell(new DeviceWorker.Begin(1, List.of(f.peer.getRef(), other.getRef()), -1, 0));
    RunThread.Start start = f.thread.next(RunThread.Start.class);
    assertEquals(2, start.shared().worldSize());
    WorkerReport.Placed placed = f.coordinator.expectMessageClass(WorkerReport.Placed.class, WAIT);
    assertEquals("shared-memory", placed.edge());
    assertFalse(start.shared().broken());
    // A rank waiting in the reduction must not wait for its deadline once its generation stops.
    f.worker.tell(new DeviceWorker.Stop(1, "rank 1 failed", true));
    assertEquals("stop 1", f.thread.next(String.class));
    assertTrue(start.shared().broken());
  }

  @Test
  void withoutAFreeDeviceTheRankFailsSayingSo() {
    Fixture f = new Fixture(0);
    f.worker.tell(f.prepare(1, 1));
    WorkerReport.Failed failed = f.coordinator.expectMessageClass(WorkerReport.Failed.class, WAIT);
    assertTrue(failed.noDevice() && failed.retryable(), failed.toString());
    assertEquals(1, failed.rank());
  }

  @Test
  void aStoppedRankKeepsItsDeviceAndSaysWhichStepsStateItHolds() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(1);
    f.worker.tell(new DeviceWorker.Stop(1, "new generation", true));
    assertEquals("stop 1", f.thread.next(String.class));
    TestProbe<DeviceWorker.HeldState> answer = testKit.createTestProbe();
    f.worker.tell(new DeviceWorker.AskState(1, answer.getRef()));
    answer.expectNoMessage(Duration.ofMillis(100)); // not before the run has stopped
    f.thread.tell(new RunEvent.RunEnded(1, null, false, 40, 4096, false));
    assertEquals(new DeviceWorker.HeldState(f.entityId, 40, 4096), answer.receiveMessage(WAIT));
    assertEquals(f.entityId, f.owner(), "the device stays for the next generation");
    f.shard.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void theNextGenerationReusesTheDeviceAndTheThread() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(1);
    f.worker.tell(new DeviceWorker.Stop(1, "new generation", true));
    f.thread.tell(new RunEvent.RunEnded(1, null, false, 40, 4096, false));
    f.worker.tell(f.prepare(2, 0));
    assertEquals(2, f.thread.next(RunThread.Assignment.class).generation());
    assertEquals(1, f.thread.started.get(), "one thread for both generations");
  }

  @Test
  void aNewerGenerationStopsTheCurrentRunFirst() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(1);
    f.worker.tell(f.prepare(3, 1));
    assertEquals("stop 1", f.thread.next(String.class));
    f.thread.tell(new RunEvent.RunEnded(1, null, false, 40, 4096, false));
    RunThread.Assignment next = f.thread.next(RunThread.Assignment.class);
    assertEquals(3, next.generation());
    assertEquals(1, next.rank());
  }

  @Test
  void aStopWithoutKeepingTheDeviceGivesItBackAndTheWorkerLeaves() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(1);
    f.worker.tell(new DeviceWorker.Stop(1, "job ended", false));
    assertEquals("stop 1", f.thread.next(String.class));
    f.thread.tell(new RunEvent.RunEnded(1, null, false, 40, 4096, false));
    assertEquals("release", f.thread.next(String.class));
    f.shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
    assertEquals("", f.owner());
  }

  @Test
  void aPrepareThatComesAfterASpareAskedToLeaveGoesBackToShardingForItsNextIncarnation() throws InterruptedException {
    Fixture f = new Fixture(1);
    // A spare: started by the question where it stands, it answers and asks to leave.
    TestProbe<DeviceWorker.HeldState> asker = testKit.createTestProbe();
    f.worker.tell(new DeviceWorker.AskState(1, asker.getRef()));
    asker.expectMessageClass(DeviceWorker.HeldState.class, WAIT);
    f.shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
    // A generation that grows onto its node prepares it at that moment: this incarnation is about
    // to be stopped, so the Prepare goes to the next one, and the device stays free.
    DeviceWorker.Prepare prepare = f.prepare(2, 1);
    f.worker.tell(prepare);
    assertEquals(prepare, f.throughSharding.receiveMessage(WAIT));
    f.shard.expectNoMessage(Duration.ofMillis(100));
    assertEquals("", f.owner());
  }

  @Test
  void anEpochReportIsSentAgainUntilAcknowledged() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.worker.tell(f.prepare(1, 0));
    f.thread.next(RunThread.Assignment.class);
    f.thread.tell(new RunEvent.Report(1, new RunEvent.EpochSums(0, 10.0, 80, 100, true, 8, 10, 1_000, 50)));
    WorkerReport.EpochReport first = f.coordinator.expectMessageClass(WorkerReport.EpochReport.class, WAIT);
    assertEquals(0, first.seq());
    assertEquals(first, f.coordinator.expectMessageClass(WorkerReport.EpochReport.class, WAIT), "sent again");
    f.worker.tell(new DeviceWorker.Ack(1, 0));
    f.askState(0); // the worker has taken the ack (same mailbox): anything sent before is in flight
    while (true) {
      try {
        f.coordinator.receiveMessage(Duration.ofMillis(50));
      } catch (AssertionError drained) {
        break;
      }
    }
    f.coordinator.expectNoMessage(Duration.ofMillis(500)); // more than two resend intervals
  }

  @Test
  void aRunThatFailsByItselfIsReportedAndARecoveredCoordinatorHearsItAgain() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(1);
    f.thread.tell(new RunEvent.RunEnded(1, "all-reduce missed its deadline", true, 40, 4096, false));
    WorkerReport.Failed failed = f.coordinator.expectMessageClass(WorkerReport.Failed.class, WAIT);
    assertEquals("all-reduce missed its deadline", failed.reason());
    TestProbe<WorkerReport> recovered = testKit.createTestProbe();
    f.worker.tell(new DeviceWorker.Reattach(1, recovered.getRef()));
    recovered.expectMessageClass(WorkerReport.Reattached.class, WAIT);
    assertEquals(failed, recovered.expectMessageClass(WorkerReport.Failed.class, WAIT));
  }

  @Test
  void onlyARankWhoseRingBeganStillTrainsForARecoveredCoordinator() throws InterruptedException {
    Fixture getting = new Fixture(1);
    getting.worker.tell(getting.prepare(1, 0));
    getting.thread.next(RunThread.Assignment.class);
    TestProbe<WorkerReport> recovered = testKit.createTestProbe();
    getting.worker.tell(new DeviceWorker.Reattach(1, recovered.getRef()));
    assertEquals(new WorkerReport.NotRunning(1, 0), recovered.receiveMessage(WAIT));

    Fixture trained = new Fixture(1);
    trained.training(1);
    trained.worker.tell(new DeviceWorker.Reattach(1, recovered.getRef()));
    assertEquals(new WorkerReport.Reattached(1, 0), recovered.receiveMessage(WAIT));
    recovered.expectMessageClass(WorkerReport.Placed.class, WAIT);
  }

  @Test
  void anIdleWorkerAskedForItsStateAnswersAndLeavesIfItHoldsNothing() {
    Fixture f = new Fixture(1);
    assertEquals(new DeviceWorker.HeldState(f.entityId, -1, 0), f.askState(5));
    f.shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
  }

  @Test
  void reportsOfAnOlderGenerationAreNotSent() throws InterruptedException {
    Fixture f = new Fixture(1);
    f.training(2);
    f.thread.tell(new RunEvent.Report(1, new RunEvent.EpochSums(0, 10.0, 80, 100, true, 8, 10, 1_000, 50)));
    f.coordinator.expectNoMessage(Duration.ofMillis(200));
    assertEquals(-1, f.askState(1).step(), "training generation 2, it holds no parked state");
  }
}
