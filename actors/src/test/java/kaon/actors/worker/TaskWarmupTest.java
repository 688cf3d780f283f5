package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import kaon.actors.training.TaskCatalog;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** A node readies itself for a task only while it has a free device to give a rank of it, once per task. */
class TaskWarmupTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final TaskCatalog catalog = TaskCatalog.load(TaskWarmupTest.class.getClassLoader());

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @Test
  void aNodeWarmsATaskOnlyWhileOneOfItsDevicesIsFree() {
    TaskWarmup warmup = new TaskWarmup(catalog, null);
    ActorRef<NodeAgent.Command> agent = testKit.spawn(NodeAgent.create(List.of(new DeviceSlot("cpu:0", "cpu", 1)), warmup));
    TestProbe<NodeAgent.DeviceReply> reply = testKit.createTestProbe();
    TestProbe<Object> owner = testKit.createTestProbe();
    agent.tell(new NodeAgent.AcquireDevice("job-1-worker-0", owner.getRef(), reply.getRef()));
    reply.expectMessageClass(NodeAgent.DeviceGranted.class);
    // Its only device is owned: no rank of another job could be placed here now.
    agent.tell(new NodeAgent.WarmTask("fashion-mnist-mlp"));
    listed(agent);
    assertFalse(warmup.asked("fashion-mnist-mlp").isPresent(), "warmed with no free device");
    agent.tell(new NodeAgent.ReleaseDevice("job-1-worker-0"));
    agent.tell(new NodeAgent.WarmTask("fashion-mnist-mlp"));
    listed(agent);
    assertTrue(warmup.asked("fashion-mnist-mlp").isPresent(), "not warmed with a free device");
  }

  @Test
  void aTaskIsWarmedOnceWithItsDataLoadedIntoTheCatalogTheWorkersUse() throws Exception {
    TaskCatalog catalog = TaskCatalog.load(TaskWarmupTest.class.getClassLoader());
    var task = catalog.find("fashion-mnist-mlp");
    assertFalse(catalog.hasData(task, null));
    TaskWarmup warmup = new TaskWarmup(catalog, null);
    CompletableFuture<Void> first = warmup.warm("fashion-mnist-mlp");
    first.get(60, TimeUnit.SECONDS);
    assertSame(first, warmup.warm("fashion-mnist-mlp"), "warmed twice");
    assertTrue(catalog.hasData(task, null), "a rank placed here would load the data again");
  }

  @Test
  void aTaskThatCannotBeWarmedSaysWhyAndIsNotTriedAgain() {
    TaskWarmup warmup = new TaskWarmup(catalog, null);
    CompletableFuture<Void> unknown = warmup.warm("no-such-task");
    ExecutionException e = assertThrows(ExecutionException.class, () -> unknown.get(10, TimeUnit.SECONDS));
    assertTrue(e.getCause().getMessage().contains("unknown task 'no-such-task'"), e.getCause().getMessage());
    assertSame(unknown, warmup.warm("no-such-task"));
  }

  /** Waits until the agent handled everything told before. */
  private static void listed(ActorRef<NodeAgent.Command> agent) {
    TestProbe<NodeAgent.Devices> devices = testKit.createTestProbe();
    agent.tell(new NodeAgent.ListDevices(devices.getRef()));
    devices.receiveMessage();
  }
}
