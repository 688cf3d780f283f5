package kaon.actors.worker;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Gives a training thread a lower CPU priority (a Linux nice value) than the node's other threads.
 *
 * <p>A worker's training thread (and libtorch's threads it starts, which inherit its nice value)
 * keeps its core busy for as long as the job trains. Everything else the node does is short work
 * that others wait for: cluster heartbeats and gossip, a joining node's handshake, the ring's
 * messages, checkpoint writes, the API. At equal priority such a thread waits for the training
 * thread's time slice to end; a node asked to let a new node join answered its InitJoin 0.4-2 s
 * late while two training threads shared its core (bench/recovery, join). With the training
 * thread a few nice levels lower, the scheduler runs the short work as soon as it wakes, and the
 * training thread still gets every cycle nobody else wants.
 *
 * <p>Raising a nice value needs no privilege. Java's thread priorities do not do this: the JVM
 * ignores them on Linux unless started with {@code -XX:ThreadPriorityPolicy=1}, which warns
 * without root. So the thread calls {@code setpriority(2)} for its own thread id through JNA
 * (DJL's own native binding). Elsewhere than Linux, or when the call fails, nothing changes and
 * the reason is returned.
 */
final class TrainingPriority {

  /** {@code which} of {@code setpriority(2)}: a process, or on Linux a thread by its id. */
  private static final int PRIO_PROCESS = 0;

  private interface LibC extends Library {
    int setpriority(int which, int who, int prio);
  }

  private TrainingPriority() {}

  /**
   * Sets the calling thread's nice value to {@code nice} (0 leaves it as it is).
   *
   * @return null when done (or nothing to do), else why not
   */
  static String lowerCurrentThread(int nice) {
    if (nice == 0) {
      return null;
    }
    try {
      // "/proc/thread-self" links to "<pid>/task/<tid>" of the thread that reads it.
      Path self = Files.readSymbolicLink(Path.of("/proc/thread-self"));
      int tid = Integer.parseInt(self.getFileName().toString());
      LibC libc = Native.load("c", LibC.class);
      if (libc.setpriority(PRIO_PROCESS, tid, nice) != 0) {
        return "setpriority failed with errno " + Native.getLastError();
      }
      return null;
    } catch (java.io.IOException | RuntimeException | LinkageError e) {
      return e.toString();
    }
  }
}
