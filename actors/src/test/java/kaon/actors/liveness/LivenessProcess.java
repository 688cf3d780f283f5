package kaon.actors.liveness;

import java.time.Duration;

/**
 * A process that only holds a liveness listener, for {@link NodeLivenessTest} to watch, stop and
 * kill: it prints its endpoint on one line and waits to be killed. Should its parent go first, its
 * standard input closes and it ends too, rather than outlive the test.
 */
public final class LivenessProcess {

  private LivenessProcess() {}

  public static void main(String[] args) throws java.io.IOException {
    NodeLiveness liveness = new NodeLiveness(new NodeLiveness.Settings("127.0.0.1", 0, Duration.ofSeconds(5), 16, false),
        "pekko://kaon@127.0.0.1:1", "127.0.0.1", "liveness-process");
    NodeLiveness.Endpoint self = liveness.endpoint();
    System.out.println("ENDPOINT " + self.port() + " " + self.incarnation());
    System.out.flush();
    while (System.in.read() >= 0) {
      // the parent writes nothing; the end of the stream is the parent's end
    }
    liveness.close();
  }
}
