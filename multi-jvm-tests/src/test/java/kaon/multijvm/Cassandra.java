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

  private static void run(String command) throws IOException, InterruptedException {
    Path script = Path.of(System.getProperty("kaon.home"), "deploy", "cassandra", "cassandra.sh");
    Process p = new ProcessBuilder(script.toString(), command).inheritIO().start();
    int code = p.waitFor();
    if (code != 0) {
      throw new AssertionError(script + " " + command + " exited " + code);
    }
  }
}
