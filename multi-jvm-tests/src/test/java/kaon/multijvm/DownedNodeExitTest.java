package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * A node that hangs long enough for the cluster to down it exits, when it wakes, with the code a
 * supervisor (systemd's {@code Restart=on-failure}, {@code cluster.sh start}) restarts it on,
 * instead of living on outside the cluster or exiting as if it had been asked to stop.
 */
class DownedNodeExitTest {

  private static final Duration WAIT = Duration.ofMinutes(2);

  @Test
  void aNodeTheClusterDownedExitsWithCodeFour() throws Exception {
    Map<String, String> env = KaonProcess.isolated(Map.of());
    // Of two nodes, keep-majority keeps the one with the lower address: the seed must be it.
    int first = KaonProcess.freePort();
    int second = KaonProcess.freePort();
    int seedPort = Math.min(first, second);
    int otherPort = Math.max(first, second);
    try (KaonProcess seed = KaonProcess.start("downed-seed", env, "node", "--devices", "1", "--port", Integer.toString(seedPort),
            "--api-port", "0", "--seed", "127.0.0.1:" + seedPort);
        KaonProcess other = KaonProcess.start("downed-other", env, "node", "--devices", "1", "--port", Integer.toString(otherPort),
            "--api-port", "0", "--seed", "127.0.0.1:" + seedPort)) {
      seed.awaitLine(Pattern.compile("kaon node up"), WAIT);
      other.awaitLine(Pattern.compile("kaon node up"), WAIT);
      seed.awaitLine(Pattern.compile("Leader is moving node \\[pekko://kaon@127.0.0.1:" + otherPort + "\\] to \\[Up\\]"), WAIT);
      other.hang();
      try {
        // Unreachable after ~3 s, downed after stable-after (4 s) more; then removed.
        seed.awaitLine(Pattern.compile("Leader is removing unreachable node \\[pekko://kaon@127.0.0.1:" + otherPort), WAIT);
      } finally {
        other.resume();
      }
      assertEquals(4, other.awaitExit(WAIT), "exit code of the downed node");
      seed.stop();
    }
  }
}
