package kaon.multijvm;

import java.io.IOException;
import java.nio.file.Path;

/** The local Cassandra node, driven through its launcher like an operator would. */
final class Cassandra {

  private Cassandra() {}

  static void start() throws IOException, InterruptedException {
    run("start");
  }

  static void stop() throws IOException, InterruptedException {
    run("stop");
  }

  /** SIGSTOP: Cassandra hangs with whatever requests it has in flight. */
  static void freeze() throws IOException, InterruptedException {
    signal("STOP");
  }

  /** SIGKILL, also of a frozen Cassandra: in-flight requests never get an answer. */
  static void kill() throws IOException, InterruptedException {
    signal("KILL");
  }

  /** Sends {@code signal} to the local node, found through its launcher's pid file. */
  private static void signal(String signal) throws IOException, InterruptedException {
    String dir = System.getenv("KAON_CASSANDRA_DIR");
    if (dir == null) {
      String data = System.getenv("XDG_DATA_HOME");
      dir = (data != null ? data : System.getProperty("user.home") + "/.local/share") + "/kaon/cassandra";
    }
    String pid = java.nio.file.Files.readString(Path.of(dir, "cassandra.pid")).trim();
    Process p = new ProcessBuilder("kill", "-" + signal, pid).inheritIO().start();
    if (p.waitFor() != 0) {
      throw new AssertionError("kill -" + signal + " " + pid + " failed");
    }
  }

  private static void run(String command) throws IOException, InterruptedException {
    Path script = Path.of(System.getProperty("kaon.home"), "deploy", "cassandra", "cassandra.sh");
    Process p = new ProcessBuilder(script.toString(), command).inheritIO().start();
    int code = p.waitFor();
    if (code != 0) {
      throw new AssertionError(script + " " + command + " exited " + code);
    }
  }
}
