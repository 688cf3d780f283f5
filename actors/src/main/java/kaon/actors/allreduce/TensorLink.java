package kaon.actors.allreduce;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.concurrent.ExecutionContextExecutor;

/**
 * This node's end of the tensor links: dedicated TCP connections that carry an all-reduce peer's
 * {@link kaon.protocol.TensorChunk}s to its right neighbour on another node, outside Artery.
 * Artery moves about 0.35x of gloo's all-reduce bandwidth here because its copies and garbage make
 * it CPU-bound, while a plain socket moved 1.15-1.33x both ways at once (notes/artery.md).
 *
 * <p>One listener per actor system, started by the first peer that needs it and bound to the
 * node's canonical Artery hostname. A peer that a left neighbour asks for its endpoint {@link
 * #register registers} here and gets an id and a key of 32 random bytes, both handed out only in
 * an Artery message to the left neighbour (mutual TLS on VMs). The neighbour connects, names the
 * id, its job and its generation in the handshake, and proves that it holds the key by answering
 * a fresh challenge ({@link TensorLinkFormat}); the key itself never crosses the link. So a
 * process that can reach the port but is not in the cluster cannot feed chunks into a ring, and
 * every refusal is counted and logged. A connection that has not proved itself within {@code
 * setup-timeout} is closed, so idle connections cannot pile up threads. The chunks themselves
 * travel unencrypted, as gloo's and NCCL's do: the link belongs on the cluster's private network.
 * Each inbound connection has a reader
 * thread that decodes frames into chunks and hands them to the registered peer with a local
 * {@code tell}, so the peer's fencing, early-chunk buffering and deadlines see them exactly like
 * chunks from Artery. Each outbound connection ({@link LinkSender}) has a writer thread. Socket
 * I/O never runs on a dispatcher thread: it blocks, and blocking is what gives TCP's backpressure.
 *
 * <p>A peer that stops {@link #unregister unregisters}: its inbound connections close, and frames
 * still arriving for it are dropped and counted. Nothing survives the actor system: {@link
 * #close()} runs when it terminates and ends every thread and socket of the link.
 */
public final class TensorLink implements Extension {

  /** The extension's id; {@link #get} is the way in. */
  public static final ExtensionId<TensorLink> ID =
      new ExtensionId<>() {
        @Override
        public TensorLink createExtension(ActorSystem<?> system) {
          return start(system);
        }
      };

  private static final Logger log = LoggerFactory.getLogger(TensorLink.class);

  /** Bounded wait for the link's threads in {@link #close()}: a closed socket ends them at once. */
  private static final long JOIN_MILLIS = 5_000;

  /**
   * Counters of this node's link.
   *
   * @param inbound connections from left neighbours open now
   * @param outbound connections to right neighbours open now (or still connecting)
   * @param framesReceived chunks read and handed to a peer
   * @param framesDropped chunks read for a peer that had stopped
   * @param handshakesRefused connections refused because they named an unknown peer or spoke
   *     another version
   */
  public record Stats(int inbound, int outbound, long framesReceived, long framesDropped, long handshakesRefused) {}

  /**
   * What a registered peer's left neighbour needs to connect to it.
   *
   * @param id names the peer in the handshake
   * @param key proves the connection's right to feed the peer; {@link
   *     TensorLinkFormat#SECRET_BYTES} bytes, to be sent only over Artery
   */
  public record Registration(long id, byte[] key) {

    /** Leaves the key out: registrations may end up in logs. */
    @Override
    public String toString() {
      return "Registration[id=" + Long.toHexString(id) + "]";
    }
  }

  private final TensorLinkSettings settings;
  private final String threadPrefix;
  private final ServerSocketChannel server;
  private final String host;
  private final int port;
  private final Thread acceptor;
  /** Closes connections that have not proved themselves in time. */
  private final Scheduler scheduler;
  private final ExecutionContextExecutor timeouts;
  /** Numbers this node's link threads. */
  private final AtomicLong nextId = new AtomicLong(1);
  /** Where peer ids, keys and challenges come from. */
  private final SecureRandom random = new SecureRandom();
  private final Map<Long, LinkReceiver.Target> targets = new ConcurrentHashMap<>();
  private final Set<LinkReceiver> receivers = ConcurrentHashMap.newKeySet();
  private final Set<LinkSender> senders = ConcurrentHashMap.newKeySet();
  private final LongAdder framesReceived = new LongAdder();
  private final LongAdder framesDropped = new LongAdder();
  private final LongAdder handshakesRefused = new LongAdder();
  private final ChunkArrayPool arrays;
  private final Shared shared = new Shared();
  private volatile boolean closed;

  /** This actor system's link; the first call starts its listener. */
  public static TensorLink get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private static TensorLink start(ActorSystem<?> system) {
    TensorLinkSettings settings =
        TensorLinkSettings.fromConfig(system.settings().config().getConfig("kaon.allreduce.link"));
    String host = settings.hostname().isBlank()
        ? system.address().getHost().orElse("127.0.0.1")
        : settings.hostname();
    TensorLink link = new TensorLink(
        settings, host, "kaon-link-" + system.name(), system.scheduler(), system.executionContext());
    system.getWhenTerminated().thenRun(link::close);
    return link;
  }

  private TensorLink(
      TensorLinkSettings settings, String host, String threadPrefix, Scheduler scheduler, ExecutionContextExecutor timeouts) {
    this.settings = settings;
    this.threadPrefix = threadPrefix;
    this.scheduler = scheduler;
    this.timeouts = timeouts;
    // What the readers may have handed out and not got back yet is about what the senders keep
    // in flight, across a few connections.
    this.arrays = new ChunkArrayPool(4 * settings.maxBytesInFlight());
    try {
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress(host, settings.port()));
      port = ((InetSocketAddress) server.getLocalAddress()).getPort();
    } catch (IOException e) {
      throw new UncheckedIOException("tensor link cannot listen on " + host + ":" + settings.port(), e);
    }
    this.host = host;
    acceptor = new Thread(this::acceptLoop, threadPrefix + "-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    log.info("tensor link listening on {}:{}", host, port);
  }

  /** What this link was started with. */
  public TensorLinkSettings settings() {
    return settings;
  }

  /** Host that left neighbours connect to. */
  public String host() {
    return host;
  }

  /** Port that left neighbours connect to. */
  public int port() {
    return port;
  }

  /**
   * Makes {@code peer} reachable over this link until {@link #unregister}.
   *
   * @return the id a left neighbour names in its handshake and the key it proves
   */
  public Registration register(ActorRef<RingMessage> peer) {
    byte[] key = new byte[TensorLinkFormat.SECRET_BYTES];
    random.nextBytes(key);
    while (true) {
      long id = random.nextLong() & Long.MAX_VALUE;
      if (id > 0 && targets.putIfAbsent(id, new LinkReceiver.Target(peer, key)) == null) {
        return new Registration(id, key.clone());
      }
    }
  }

  /**
   * Makes the peer of {@code id} unreachable and closes its inbound connections: its generation
   * is over, and a neighbour of that generation must not keep a socket and a thread here.
   */
  public void unregister(long id) {
    targets.remove(id);
    for (LinkReceiver receiver : receivers) {
      if (receiver.target() == id) {
        receiver.close();
      }
    }
  }

  /**
   * Opens a connection to a right neighbour's link, proving {@code key}, on the sender's own
   * thread, which reports to
   * {@code events} when it is up or down and writes the chunks {@link LinkSender#offer offered}
   * to it.
   *
   * @throws IllegalStateException if this link is closed
   */
  LinkSender connect(
      String host, int port, TensorLinkFormat.Handshake handshake, byte[] key, ActorRef<LinkSender.Event> events) {
    if (closed) {
      throw new IllegalStateException("tensor link is closed");
    }
    LinkSender sender = new LinkSender(shared, new InetSocketAddress(host, port), handshake, key, events);
    senders.add(sender);
    sender.start(threadPrefix + "-out-" + nextId.getAndIncrement());
    return sender;
  }

  /** The counters now. */
  public Stats stats() {
    return new Stats(receivers.size(), senders.size(), framesReceived.sum(), framesDropped.sum(), handshakesRefused.sum());
  }

  /**
   * Stops listening and closes every connection, then waits (boundedly) for the link's threads
   * to end. Runs by itself when the actor system terminates; chunks not yet written are lost, and
   * the round that needed them misses its deadline.
   */
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    List<Thread> threads = new ArrayList<>();
    threads.add(acceptor);
    try {
      server.close();
    } catch (IOException e) {
      log.debug("closing the tensor link listener failed", e);
    }
    for (LinkReceiver receiver : receivers) {
      threads.add(receiver.thread());
      receiver.close();
    }
    for (LinkSender sender : senders) {
      threads.add(sender.thread());
      sender.shutDown();
    }
    for (Thread thread : threads) {
      if (thread == null) {
        continue;
      }
      try {
        thread.join(JOIN_MILLIS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    log.info("tensor link on {}:{} closed", host, port);
  }

  private void acceptLoop() {
    while (!closed) {
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (AsynchronousCloseException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          log.warn("tensor link on {}:{} cannot accept: {}", host, port, e.toString());
        }
        return;
      }
      LinkReceiver receiver = new LinkReceiver(shared, channel);
      receivers.add(receiver);
      if (closed) {
        // close() may have taken its copy of the receivers before this one was added.
        receiver.close();
      }
      receiver.start(threadPrefix + "-in-" + nextId.getAndIncrement());
      scheduler.scheduleOnce(settings.setupTimeout(), receiver::closeUnlessAdmitted, timeouts);
    }
  }

  /** Buffers chunks are decoded into, which peers give back once they are summed. */
  ChunkArrayPool arrays() {
    return arrays;
  }

  /**
   * What the connections share with the link: its settings, buffers, registrations and counters.
   * A class of its own, so that the connections know this much of the link and no more.
   */
  private final class Shared implements LinkReceiver.Host, LinkSender.Host {

    @Override
    public TensorLinkSettings settings() {
      return settings;
    }

    @Override
    public ChunkArrayPool arrays() {
      return arrays;
    }

    @Override
    public LinkReceiver.Target target(long id) {
      return targets.get(id);
    }

    /** A fresh challenge for an inbound handshake. */
    @Override
    public byte[] nonce() {
      byte[] nonce = new byte[TensorLinkFormat.SECRET_BYTES];
      random.nextBytes(nonce);
      return nonce;
    }

    @Override
    public void received() {
      framesReceived.increment();
    }

    @Override
    public void dropped() {
      framesDropped.increment();
    }

    @Override
    public void refused() {
      handshakesRefused.increment();
    }

    @Override
    public void ended(LinkReceiver receiver) {
      receivers.remove(receiver);
    }

    @Override
    public void ended(LinkSender sender) {
      senders.remove(sender);
    }

    @Override
    public boolean isClosed() {
      return closed;
    }
  }
}
