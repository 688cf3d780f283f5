package kaon.actors.liveness;

import com.typesafe.config.Config;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import kaon.protocol.KryoWireMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Notices within milliseconds that another node's process has ended, from the TCP connection it
 * held: when a process dies, even by SIGKILL, its kernel closes its sockets, and the other end
 * reads the end of the stream (or a reset) at once. The cluster's failure detector needs seconds
 * of missing heartbeats for the same conclusion, and a ring all-reduce its round deadline; a lost
 * worker's recovery was mostly those waits (bench/recovery).
 *
 * <p>Each node listens on one port. A connection to it gets a greeting (a magic number and the
 * listener's incarnation, 64 random bits drawn at start) and is then held open, with nothing more
 * sent either way. A watcher connects to the nodes it cares about, checks the greeting against the
 * {@link Endpoint} the node itself handed out, and tells its subscribers {@link NodeGone} when that
 * connection ends. Only a connection that was verified counts: a node that cannot be reached or
 * answers with another incarnation is logged and left to the slower detectors, and so is a node
 * that hangs (SIGSTOP) or is cut off without a reset, since its socket stays open. A false alarm
 * (a connection reset by something else) costs one re-formation; generations fence the rank that
 * was wrongly left out. Clients prove nothing and can learn nothing but the incarnation, so the
 * port needs no authentication; the number of connections held is bounded.
 *
 * <p>One thread per node does everything (accepting, connecting, greeting, watching) with a
 * selector, so watching every node of a large cluster costs one socket each and no threads.
 */
public final class NodeLiveness implements Extension {

  /** The extension's id; {@link #get} is the way in. */
  public static final ExtensionId<NodeLiveness> ID =
      new ExtensionId<>() {
        @Override
        public NodeLiveness createExtension(ActorSystem<?> system) {
          return start(system);
        }
      };

  /**
   * Where a node's liveness listener is, as the node hands it out.
   *
   * @param node the node's cluster address, as its ranks name it
   * @param host where the listener accepts connections
   * @param port its port
   * @param incarnation what its greeting says; a listener started again draws another
   */
  public record Endpoint(String node, String host, int port, long incarnation) implements KryoWireMessage {}

  /** To a subscriber: the process of {@code node} ended ({@code how}: the connection closed or was reset). */
  public record NodeGone(Endpoint node, String how) {}

  /**
   * How the listener binds and watchers connect; read once from {@code kaon.liveness}.
   *
   * @param hostname where the listener binds and what it hands out; empty means the node's
   *     canonical Artery hostname
   * @param port listening port; 0 lets the OS pick one (fixed ports are for firewalls)
   * @param setupTimeout how long a watcher waits for the connection and the greeting
   * @param maxConnections connections the listener holds at most; more are closed at once
   * @param downing whether a node whose process is seen to end is downed at once ({@link LivenessDowning})
   */
  public record Settings(String hostname, int port, Duration setupTimeout, int maxConnections, boolean downing) {
    public Settings {
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("kaon.liveness.port must be 0-65535, was " + port);
      }
      if (maxConnections < 1) {
        throw new IllegalArgumentException("kaon.liveness.max-connections must be positive, was " + maxConnections);
      }
    }

    /** Reads the keys of {@code kaon.liveness}. */
    public static Settings fromConfig(Config config) {
      return new Settings(config.getString("hostname"), config.getInt("port"), config.getDuration("setup-timeout"),
          config.getInt("max-connections"), config.getBoolean("downing"));
    }
  }

  private static final Logger log = LoggerFactory.getLogger(NodeLiveness.class);
  /** "KLV1": tells a Kaon liveness listener from whatever else may hold the port. */
  static final int MAGIC = 0x4B4C5631;
  static final int GREETING_BYTES = 12;
  /** Endpoints found gone, remembered so that a watch that comes later is answered at once. */
  private static final int GONE_REMEMBERED = 1024;

  private final Settings settings;
  private final Endpoint self;
  private final Selector selector;
  private final ServerSocketChannel server;
  private final Thread thread;
  /** Work handed to the selector thread; everything below it is that thread's alone. */
  private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  private final Map<Long, Watch> watches = new HashMap<>();
  private final Set<Long> gone = new LinkedHashSet<>();
  private int inbound;
  private volatile boolean closed;

  /** One watched node: its connection, how far it got, and who wants to hear of its end. */
  private static final class Watch {
    final Endpoint node;
    final SocketChannel channel;
    final long deadlineNanos;
    final ByteBuffer greeting = ByteBuffer.allocate(GREETING_BYTES);
    final Set<ActorRef<NodeGone>> subscribers = new HashSet<>();
    boolean verified;

    Watch(Endpoint node, SocketChannel channel, long deadlineNanos) {
      this.node = node;
      this.channel = channel;
      this.deadlineNanos = deadlineNanos;
    }
  }

  /** This actor system's liveness listener; the first call starts it. */
  public static NodeLiveness get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private static NodeLiveness start(ActorSystem<?> system) {
    Settings settings = Settings.fromConfig(system.settings().config().getConfig("kaon.liveness"));
    String host = settings.hostname().isBlank() ? system.address().getHost().orElse("127.0.0.1") : settings.hostname();
    NodeLiveness liveness = new NodeLiveness(settings, system.address().toString(), host, "kaon-liveness-" + system.name());
    system.getWhenTerminated().thenRun(liveness::close);
    return liveness;
  }

  NodeLiveness(Settings settings, String node, String host, String threadName) {
    this.settings = settings;
    try {
      selector = Selector.open();
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress(host, settings.port()));
      server.configureBlocking(false);
      server.register(selector, SelectionKey.OP_ACCEPT);
    } catch (IOException e) {
      throw new IllegalStateException("node liveness cannot listen on " + host + ":" + settings.port() + ": " + e.getMessage(), e);
    }
    int port = server.socket().getLocalPort();
    long incarnation = new SecureRandom().nextLong();
    self = new Endpoint(node, host, port, incarnation);
    thread = new Thread(this::run, threadName);
    thread.setDaemon(true);
    thread.start();
    log.info("node liveness listening on {}:{}", host, port);
  }

  /**
   * What {@code system}'s node hands out for others to watch it, or null when its listener cannot
   * start (the port is taken): then it is watched by the slower detectors only, which is logged.
   */
  public static Endpoint endpointOf(ActorSystem<?> system) {
    try {
      return get(system).endpoint();
    } catch (RuntimeException e) {
      log.error("node liveness is off on this node: {}", e.getMessage());
      return null;
    }
  }

  /** What this listener was started with. */
  public Settings settings() {
    return settings;
  }

  /** What this node hands out for others to watch it. */
  public Endpoint endpoint() {
    return self;
  }

  /**
   * Tells {@code subscriber} once when the process of {@code node} ends, as far as a connection to
   * it shows. Watching this node itself, or a node already watched, costs nothing more.
   */
  public void watch(Endpoint node, ActorRef<NodeGone> subscriber) {
    if (node.incarnation() != self.incarnation()) {
      submit(() -> startWatch(node, subscriber));
    }
  }

  /** {@code subscriber} hears of no node any more; connections nobody else wants are closed. */
  public void unwatch(ActorRef<NodeGone> subscriber) {
    submit(() -> {
      for (Watch watch : new ArrayList<>(watches.values())) {
        if (watch.subscribers.remove(subscriber) && watch.subscribers.isEmpty()) {
          drop(watch);
        }
      }
    });
  }

  /** How far the watch of a node got: none, connecting (or waiting for its greeting), verified. */
  enum WatchState { NONE, CONNECTING, VERIFIED }

  /** How far the watch of {@code node} got, asked of the selector thread (for tests). */
  WatchState watchState(Endpoint node) {
    java.util.concurrent.CompletableFuture<WatchState> state = new java.util.concurrent.CompletableFuture<>();
    submit(() -> {
      Watch watch = watches.get(node.incarnation());
      state.complete(watch == null ? WatchState.NONE : watch.verified ? WatchState.VERIFIED : WatchState.CONNECTING);
    });
    try {
      return state.get(5, java.util.concurrent.TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new IllegalStateException("the liveness thread did not answer", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Ends the thread and every connection; the nodes that watch this one see it gone. */
  public void close() {
    closed = true;
    selector.wakeup();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void submit(Runnable task) {
    tasks.add(task);
    selector.wakeup();
  }

  private void run() {
    try {
      while (!closed) {
        selector.select(200);
        Runnable task;
        while ((task = tasks.poll()) != null) {
          task.run();
        }
        for (SelectionKey key : selector.selectedKeys()) {
          handle(key);
        }
        selector.selectedKeys().clear();
        expireSetups();
      }
    } catch (IOException | RuntimeException e) {
      if (!closed) {
        // The sockets stay open: closing them would tell every watcher that this node's process
        // ended, and have it downed, while it runs on.
        log.error("node liveness stopped; lost nodes are noticed by the slower detectors only", e);
        return;
      }
    }
    closeAll();
  }

  private void closeAll() {
    for (SelectionKey key : selector.keys()) {
      closeQuietly(key);
    }
    closeQuietly(server);
    try {
      selector.close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  private void handle(SelectionKey key) {
    if (!key.isValid()) {
      return;
    }
    if (key.isAcceptable()) {
      accept();
    } else if (key.attachment() instanceof Watch watch) {
      if (key.isConnectable()) {
        connected(watch, key);
      } else if (key.isReadable()) {
        readWatched(watch);
      }
    } else if (key.isReadable()) {
      readInbound(key);
    }
  }

  // ---------------------------------------------------------------- the listener

  private void accept() {
    SocketChannel channel;
    try {
      while ((channel = server.accept()) != null) {
        if (inbound >= settings.maxConnections()) {
          closeQuietly(channel);
          continue;
        }
        channel.configureBlocking(false);
        channel.socket().setTcpNoDelay(true);
        ByteBuffer greeting = ByteBuffer.allocate(GREETING_BYTES).putInt(MAGIC).putLong(self.incarnation()).flip();
        // Twelve bytes into a fresh socket's empty send buffer: one write takes them all.
        channel.write(greeting);
        channel.register(selector, SelectionKey.OP_READ);
        inbound++;
      }
    } catch (IOException e) {
      log.debug("node liveness: a connection failed while accepted: {}", e.toString());
    }
  }

  /** A watcher sends nothing; what it sends anyway is read and dropped, and its end closes ours. */
  private void readInbound(SelectionKey key) {
    ByteBuffer scratch = ByteBuffer.allocate(64);
    try {
      if (((SocketChannel) key.channel()).read(scratch) >= 0) {
        return;
      }
    } catch (IOException e) {
      // the watcher reset it: done the same way
    }
    closeQuietly(key);
    inbound--;
  }

  // ---------------------------------------------------------------- watching others

  private void startWatch(Endpoint node, ActorRef<NodeGone> subscriber) {
    if (closed) {
      return;
    }
    if (gone.contains(node.incarnation())) {
      subscriber.tell(new NodeGone(node, "its connection had already ended"));
      return;
    }
    Watch watch = watches.get(node.incarnation());
    if (watch == null) {
      try {
        SocketChannel channel = SocketChannel.open();
        channel.configureBlocking(false);
        watch = new Watch(node, channel, System.nanoTime() + settings.setupTimeout().toNanos());
        boolean connected = channel.connect(new InetSocketAddress(node.host(), node.port()));
        channel.register(selector, connected ? SelectionKey.OP_READ : SelectionKey.OP_CONNECT, watch);
      } catch (IOException | RuntimeException e) {
        log.warn("cannot watch node {} at {}:{} ({}); its loss will be noticed by the slower detectors only", node.node(),
            node.host(), node.port(), e.toString());
        if (watch != null) {
          closeQuietly(watch.channel);
        }
        return;
      }
      watches.put(node.incarnation(), watch);
    }
    watch.subscribers.add(subscriber);
  }

  private void connected(Watch watch, SelectionKey key) {
    try {
      watch.channel.finishConnect();
      key.interestOps(SelectionKey.OP_READ);
    } catch (IOException e) {
      unwatchable(watch, "cannot connect: " + e.getMessage());
    }
  }

  private void readWatched(Watch watch) {
    try {
      ByteBuffer into = watch.verified ? ByteBuffer.allocate(64) : watch.greeting;
      if (watch.channel.read(into) < 0) {
        ended(watch, "closed its connection");
        return;
      }
      if (!watch.verified && !watch.greeting.hasRemaining()) {
        watch.greeting.flip();
        int magic = watch.greeting.getInt();
        long incarnation = watch.greeting.getLong();
        if (magic != MAGIC || incarnation != watch.node.incarnation()) {
          unwatchable(watch, magic != MAGIC ? "not a liveness listener" : "another incarnation listens there");
        } else {
          watch.verified = true;
        }
      }
    } catch (IOException e) {
      ended(watch, "reset its connection (" + e.getMessage() + ")");
    }
  }

  /** The connection ended: the node's process is gone, if the connection had been verified. */
  private void ended(Watch watch, String how) {
    if (!watch.verified) {
      unwatchable(watch, "the connection ended before its greeting");
      return;
    }
    drop(watch);
    gone.add(watch.node.incarnation());
    if (gone.size() > GONE_REMEMBERED) {
      gone.remove(gone.iterator().next());
    }
    log.warn("node {} {}: its process is gone", watch.node.node(), how);
    NodeGone news = new NodeGone(watch.node, how);
    watch.subscribers.forEach(s -> s.tell(news));
  }

  private void unwatchable(Watch watch, String why) {
    log.warn("cannot watch node {} at {}:{} ({}); its loss will be noticed by the slower detectors only", watch.node.node(),
        watch.node.host(), watch.node.port(), why);
    drop(watch);
  }

  private void expireSetups() {
    long now = System.nanoTime();
    for (Watch watch : new ArrayList<>(watches.values())) {
      if (!watch.verified && now - watch.deadlineNanos > 0) {
        unwatchable(watch, "no greeting within " + settings.setupTimeout().toMillis() + " ms");
      }
    }
  }

  private void drop(Watch watch) {
    watches.remove(watch.node.incarnation());
    closeQuietly(watch.channel);
  }

  private static void closeQuietly(SelectionKey key) {
    key.cancel();
    closeQuietly(key.channel());
  }

  private static void closeQuietly(java.nio.channels.Channel channel) {
    try {
      channel.close();
    } catch (IOException ignored) {
      // already gone
    }
  }
}
