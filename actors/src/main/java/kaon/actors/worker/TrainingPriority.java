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
   * Lowers the calling thread's priority by {@code levels} nice levels below what it has (a node
   * started with a nice value keeps it for its other threads), at most to 19; 0 changes nothing.
   *
   * @return null when done (or nothing to do), else why not
   */
  static String lowerCurrentThread(int levels) {
    if (levels == 0) {
      return null;
    }
    try {
      // The stat of the thread that reads it: its id first, then the command name in parentheses
      // (which may hold spaces), and the nice value as field 19, counted after that name.
      String stat = Files.readString(Path.of("/proc/thread-self/stat"));
      int tid = Integer.parseInt(stat.substring(0, stat.indexOf(' ')));
      int nice = Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[19 - 3]);
      LibC libc = Native.load("c", LibC.class);
      if (libc.setpriority(PRIO_PROCESS, tid, Math.min(19, nice + levels)) != 0) {
        return "setpriority failed with errno " + Native.getLastError();
      }
      return null;
    } catch (java.io.IOException | RuntimeException | LinkageError e) {
      return e.toString();
    }
  }
}
