package kaon.runtime.chaos;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A TCP proxy that delivers what it forwards late: each piece read is written {@code delay} plus
 * up to {@code jitter} after it arrived, in order (a stream cannot overtake itself, so a piece is
 * never written before the one before it). The delay and jitter a network fault adds where the
 * kernel has no netem: the namespace VMs' traffic to a node is diverted through it
 * ({@code netns-vms.sh divert}).
 *
 * <p>Each connection has a thread per direction reading and one writing, all daemons; {@link
 * #close} ends them by closing every socket.
 */
final class DelayProxy implements AutoCloseable {

  /** A piece read and when it may be written. */
  private record Piece(byte[] bytes, long dueNanos) {}

  private static final Piece END = new Piece(new byte[0], 0);

  private final ServerSocket server;
  private final InetSocketAddress target;
  private volatile Duration delay;
  private volatile Duration jitter;
  private final Random random;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private volatile boolean closed;

  /**
   * Listens on {@code bind}, on a free port, and forwards each connection to {@code target}.
   *
   * @param seed draws the jitter
   */
  DelayProxy(InetAddress bind, InetSocketAddress target, Duration delay, Duration jitter, long seed) throws IOException {
    this.server = new ServerSocket(0, 50, bind);
    this.target = target;
    this.delay = delay;
    this.jitter = jitter;
    this.random = new Random(seed);
    daemon("delay-proxy-accept", this::accept).start();
  }

  /** The port it listens on. */
  int port() {
    return server.getLocalPort();
  }

  private void accept() {
    while (!closed) {
      try {
        Socket in = server.accept();
        Socket out = new Socket();
        sockets.add(in);
        sockets.add(out);
        try {
          out.connect(target, 5_000);
        } catch (IOException e) {
          in.close();
          out.close();
          continue;
        }
        in.setTcpNoDelay(true);
        out.setTcpNoDelay(true);
        pump(in, out);
        pump(out, in);
      } catch (IOException e) {
        if (closed) {
          return;
        }
      }
    }
  }

  /** Forwards from {@code from} to {@code to}, each piece late; either side's end closes both. */
  private void pump(Socket from, Socket to) {
    BlockingQueue<Piece> pieces = new LinkedBlockingQueue<>();
    daemon("delay-proxy-read", () -> {
      long lastDue = 0;
      try (InputStream in = from.getInputStream()) {
        byte[] buffer = new byte[64 * 1024];
        for (int n; (n = in.read(buffer)) >= 0; ) {
          long due = Math.max(lastDue, System.nanoTime() + delay.toNanos() + extra());
          lastDue = due;
          pieces.put(new Piece(Arrays.copyOf(buffer, n), due));
        }
      } catch (IOException | InterruptedException e) {
        // the connection ended
      }
      pieces.add(END);
    }).start();
    daemon("delay-proxy-write", () -> {
      try (OutputStream out = to.getOutputStream()) {
        for (Piece p = pieces.take(); p != END; p = pieces.take()) {
          long wait = p.dueNanos() - System.nanoTime();
          if (wait > 0) {
            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
          }
          out.write(p.bytes());
          out.flush();
        }
      } catch (IOException | InterruptedException e) {
        // the connection ended
      } finally {
        closeQuietly(from);
        closeQuietly(to);
        sockets.remove(from);
        sockets.remove(to);
      }
    }).start();
  }

  private long extra() {
    if (jitter.isZero()) {
      return 0;
    }
    synchronized (random) {
      return (long) (random.nextDouble() * jitter.toNanos());
    }
  }

  /**
   * The fault is over: what it forwards from now on goes out at once. The connections it carries
   * stay (closing them would lose what they have in flight, which the end of a latency does not);
   * new ones no longer come to it.
   */
  void relax() {
    delay = Duration.ZERO;
    jitter = Duration.ZERO;
  }

  /** Stops listening and closes every connection it forwards: they break, and their ends connect again. */
  @Override
  public void close() {
    closed = true;
    closeQuietly(server);
    sockets.forEach(DelayProxy::closeQuietly);
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception ignored) {
      // closing is all that is left to do
    }
  }

  private static Thread daemon(String name, Runnable body) {
    Thread t = new Thread(body, name);
    t.setDaemon(true);
    return t;
  }
}
