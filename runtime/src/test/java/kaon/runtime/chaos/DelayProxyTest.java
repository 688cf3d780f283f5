package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The latency fault's proxy over real sockets: everything arrives, in order, and none of it early. */
class DelayProxyTest {

  @Test
  void forwardsEveryByteInOrderBothWaysNoneBeforeItsDelay() throws Exception {
    InetAddress loopback = InetAddress.getLoopbackAddress();
    try (ServerSocket echo = new ServerSocket(0, 5, loopback)) {
      Thread server = new Thread(() -> {
        try (Socket s = echo.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
          in.transferTo(out);
        } catch (Exception ignored) {
          // the test ended
        }
      });
      server.setDaemon(true);
      server.start();
      byte[] sent = new byte[300_000];
      new Random(7).nextBytes(sent);
      try (DelayProxy proxy = new DelayProxy(loopback, new InetSocketAddress(loopback, echo.getLocalPort()),
          Duration.ofMillis(150), Duration.ofMillis(50), 1);
          Socket client = new Socket(loopback, proxy.port())) {
        long start = System.nanoTime();
        Thread writer = new Thread(() -> {
          try {
            client.getOutputStream().write(sent);
          } catch (Exception ignored) {
            // the read below fails then
          }
        });
        writer.start();
        byte[] back = client.getInputStream().readNBytes(sent.length);
        long took = System.nanoTime() - start;
        assertArrayEquals(sent, back, "every byte, in order, through the proxy and back");
        assertTrue(took >= Duration.ofMillis(300).toNanos(), "150 ms each way at least, took " + took / 1_000_000 + " ms");
        proxy.relax();
        client.getOutputStream().write(sent, 0, 1000);
        assertArrayEquals(java.util.Arrays.copyOf(sent, 1000), client.getInputStream().readNBytes(1000),
            "relaxed, it still carries the connection");
      }
    }
  }
}
