package kaon.actors.liveness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Watching nodes over real sockets: listeners in this JVM that close, and a separate process that
 * is stopped and killed, as a node's JVM is in a crash.
 */
class NodeLivenessTest {

  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final NodeLiveness.Settings SETTINGS = new NodeLiveness.Settings("127.0.0.1", 0, Duration.ofSeconds(5), 16, false);
  /** Far longer than the news takes (milliseconds), so that a slow machine does not fail the test. */
  private static final Duration WAIT = Duration.ofSeconds(10);

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private static NodeLiveness node(String name) {
    return new NodeLiveness(SETTINGS, "pekko://kaon@127.0.0.1:" + name, "127.0.0.1", "liveness-" + name);
  }

  /** Runs {@code test} with a watcher and a node to watch, both closed afterwards. */
  private static void withTwo(String name, java.util.function.BiConsumer<NodeLiveness, NodeLiveness> test) {
    NodeLiveness watcher = node(name + "-watcher");
    NodeLiveness watched = node(name + "-watched");
    try {
      test.accept(watcher, watched);
    } finally {
      watcher.close();
      watched.close();
    }
  }

  @Test
  void aWatchedNodeThatGoesAwayIsReportedOnceToEverySubscriber() {
    withTwo("1", (watcher, watched) -> {
      TestProbe<NodeLiveness.NodeGone> first = testKit.createTestProbe();
      TestProbe<NodeLiveness.NodeGone> second = testKit.createTestProbe();
      watcher.watch(watched.endpoint(), first.getRef());
      watcher.watch(watched.endpoint(), second.getRef());
      awaitVerified(watcher, watched.endpoint());
      watched.close();
      assertEquals(watched.endpoint(), first.expectMessageClass(NodeLiveness.NodeGone.class, WAIT).node());
      assertEquals(watched.endpoint(), second.expectMessageClass(NodeLiveness.NodeGone.class, WAIT).node());
      first.expectNoMessage(Duration.ofMillis(300));
      // A watch that comes after the news hears it at once.
      TestProbe<NodeLiveness.NodeGone> late = testKit.createTestProbe();
      watcher.watch(watched.endpoint(), late.getRef());
      late.expectMessageClass(NodeLiveness.NodeGone.class, WAIT);
    });
  }

  @Test
  void aSubscriberThatUnwatchedHearsNothingAndNeitherDoesAWatchOfItself() {
    withTwo("2", (watcher, watched) -> {
      TestProbe<NodeLiveness.NodeGone> gone = testKit.createTestProbe();
      watcher.watch(watcher.endpoint(), gone.getRef());
      watcher.watch(watched.endpoint(), gone.getRef());
      awaitVerified(watcher, watched.endpoint());
      watcher.unwatch(gone.getRef());
      awaitUnwatched(watcher, watched.endpoint());
      watched.close();
      gone.expectNoMessage(Duration.ofMillis(500));
    });
  }

  @Test
  void anEndpointWithAnotherIncarnationIsNotWatchedSoItsEndSaysNothing() {
    withTwo("3", (watcher, watched) -> {
      TestProbe<NodeLiveness.NodeGone> gone = testKit.createTestProbe();
      NodeLiveness.Endpoint real = watched.endpoint();
      NodeLiveness.Endpoint stale = new NodeLiveness.Endpoint(real.node(), real.host(), real.port(), real.incarnation() + 1);
      watcher.watch(stale, gone.getRef());
      awaitUnwatched(watcher, stale); // refused at the greeting
      watched.close();
      gone.expectNoMessage(Duration.ofMillis(500));
    });
  }

  @Test
  void aKilledProcessIsReportedAtOnceButAStoppedOneIsNot() throws Exception {
    NodeLiveness watcher = node("7");
    Process process = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx64m",
        "-cp", System.getProperty("java.class.path"), LivenessProcess.class.getName())
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    TestProbe<NodeLiveness.NodeGone> gone = testKit.createTestProbe();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      String printed = out.readLine();
      while (printed != null && !printed.startsWith("ENDPOINT ")) {
        printed = out.readLine(); // its log lines
      }
      assertTrue(printed != null, "the process ended before it printed its endpoint");
      String[] line = printed.split(" ");
      NodeLiveness.Endpoint endpoint = new NodeLiveness.Endpoint("pekko://kaon@127.0.0.1:1", "127.0.0.1",
          Integer.parseInt(line[1]), Long.parseLong(line[2]));
      watcher.watch(endpoint, gone.getRef());
      awaitVerified(watcher, endpoint);
      // A hung process keeps its sockets: that is for the all-reduce deadline to notice.
      signal("STOP", process.pid());
      gone.expectNoMessage(Duration.ofSeconds(1));
      long killed = System.nanoTime();
      process.destroyForcibly(); // SIGKILL
      NodeLiveness.NodeGone news = gone.expectMessageClass(NodeLiveness.NodeGone.class, WAIT);
      assertEquals(endpoint, news.node());
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
      assertTrue(millis < WAIT.toMillis(), "reported after " + millis + " ms");
    } finally {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
      watcher.close();
    }
  }

  private static void signal(String signal, long pid) throws IOException, InterruptedException {
    assertEquals(0, new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start().waitFor());
  }

  /** Waits until {@code watcher} has checked {@code node}'s greeting (or gave up on it). */
  private static void awaitVerified(NodeLiveness watcher, NodeLiveness.Endpoint node) throws RuntimeException {
    awaitState(watcher, node, NodeLiveness.WatchState.VERIFIED);
  }

  private static void awaitUnwatched(NodeLiveness watcher, NodeLiveness.Endpoint node) {
    awaitState(watcher, node, NodeLiveness.WatchState.NONE);
  }

  private static void awaitState(NodeLiveness watcher, NodeLiveness.Endpoint node, NodeLiveness.WatchState state) {
    testKit.createTestProbe().awaitAssert(WAIT, () -> {
      assertEquals(state, watcher.watchState(node), "the watch of " + node);
      return null;
    });
  }
}
