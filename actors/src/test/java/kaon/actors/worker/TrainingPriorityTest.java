package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class TrainingPriorityTest {

  /** The nice value of the calling thread, as the kernel reports it (field 19 of its stat). */
  private static int niceOfThisThread() throws Exception {
    String stat = Files.readString(Path.of("/proc/thread-self/stat"));
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Integer.parseInt(fields[19 - 3]);
  }

  /** What {@code body} returns (or throws) on a thread of its own, which starts at this one's nice value. */
  private static Object onNewThread(java.util.concurrent.Callable<Object> body) throws InterruptedException {
    AtomicReference<Object> seen = new AtomicReference<>();
    Thread thread = new Thread(() -> {
      try {
        seen.set(body.call());
      } catch (Exception e) {
        seen.set(e);
      }
    });
    thread.start();
    thread.join();
    return seen.get();
  }

  @Test
  void lowersOnlyTheCallingThread() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self")), "Linux only");
    int before = niceOfThisThread();
    Object seen = onNewThread(() -> {
      String problem = TrainingPriority.lowerCurrentThread(3);
      return problem != null ? problem : niceOfThisThread();
    });
    assertEquals(Math.min(19, before + 3), seen);
    assertEquals(before, niceOfThisThread(), "the caller of another thread keeps its priority");
  }

  @Test
  void countsFromTheThreadsOwnNiceValue() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self")), "Linux only");
    int before = niceOfThisThread();
    Object seen = onNewThread(() -> {
      // A node started with a nice value of its own: its training threads go that much lower.
      String first = TrainingPriority.lowerCurrentThread(2);
      String second = TrainingPriority.lowerCurrentThread(3);
      return first != null ? first : second != null ? second : niceOfThisThread();
    });
    assertEquals(Math.min(19, before + 5), seen);
  }

  @Test
  void zeroChangesNothing() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self")), "Linux only");
    int before = niceOfThisThread();
    assertNull(TrainingPriority.lowerCurrentThread(0));
    assertEquals(before, niceOfThisThread());
  }
}
