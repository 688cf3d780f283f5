package kaon.actors.allreduce;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One outbound tensor link connection, from a peer to its right neighbour on another node. Its
 * own thread connects, sends the handshake, and then writes the frames the peer {@link #offer
 * offers}, blocking on the socket when the receiver is slower: TCP's backpressure stops this
 * thread, never the peer's dispatcher thread.
 *
 * <p>A {@link Frame} is a view of the peer's flat buffer, not a copy: the writer encodes the floats
 * straight from there into its direct buffer, which saves the copy (and, for megabyte chunks, the
 * zeroed allocation) per chunk that an actor message needs. The peer keeps that region unchanged
 * until its neighbour has the chunk anyway, since the ring only rewrites a region after a chunk
 * that depends on it came back; only when its round completes must it wait for {@link Drained}
 * before the buffer goes back to its caller.
 *
 * <p>Flow control: {@link #offer} refuses a frame once {@code max-bytes-in-flight} bytes are queued
 * and not yet encoded, and the peer keeps it; once the writer has brought the queue down to half
 * it sends a {@link Writable} and the peer offers the rest. So a slow or dead neighbour costs a
 * bounded queue here, and a fast one always has the next frames ready.
 *
 * <p>The peer hears {@link Up} once the handshake is accepted and {@link Down} if the connection
 * cannot be opened or breaks, once the writer no longer reads the peer's buffer. Frames queued or
 * half-written when it breaks are lost, not sent again over Artery: the receiver may already have
 * some of them, and a chunk added twice would corrupt the sum. The round that needed them misses
 * its deadline instead.
 */
final class LinkSender implements Runnable {

  /**
   * One chunk to send: {@code buffer[offset .. offset + length)}, which is also where it goes in
   * the receiver's buffer.
   */
  record Frame(long step, int round, int chunk, int offset, int length, float[] buffer, boolean corrupt) {

    /** A frame sent intact ({@code corrupt}: the chaos tooling damages it after its checksum). */
    Frame(long step, int round, int chunk, int offset, int length, float[] buffer) {
      this(step, round, chunk, offset, length, buffer, false);
    }
  }

  /** What the sender tells its peer; the peer's own thread acts on it. */
  sealed interface Event permits Up, Down, Writable, Drained {
    /** The sender this is about. */
    LinkSender sender();
  }

  /** The handshake was accepted: frames may be offered. */
  record Up(LinkSender sender) implements Event {}

  /**
   * The connection could not be opened, was refused, broke or was closed by this node's link;
   * the writer has stopped and reads nothing any more.
   */
  record Down(LinkSender sender, String reason) implements Event {}

  /** The queue has room again after {@link #offer} refused a frame. */
  record Writable(LinkSender sender) implements Event {}

  /** Every offered frame is encoded: the writer no longer reads the peer's buffer. */
  record Drained(LinkSender sender) implements Event {}

  private static final Logger log = LoggerFactory.getLogger(LinkSender.class);

  /** Bytes of one frame's header in {@link TensorLinkFormat}; close enough for accounting. */
  private static final int FRAME_OVERHEAD = 32;

  /** Ends the writer's wait for frames when the connection closes. */
  private static final Frame CLOSE = new Frame(0, 0, 0, 0, 0, new float[0]);

  /** What a connection needs of the link that opened it (see TensorLink). */
  interface Host {
    TensorLinkSettings settings();

    void ended(LinkSender sender);

    boolean isClosed();
  }

  private final Host link;
  private final InetSocketAddress address;
  private final TensorLinkFormat.Handshake handshake;
  /** The receiving peer's key, proved to its node and never written to the socket. */
  private final byte[] key;
  private final ActorRef<Event> events;
  private final long maxBytesInFlight;
  private final LinkedBlockingQueue<Frame> queue = new LinkedBlockingQueue<>();
  private final AtomicLong bytesInFlight = new AtomicLong();
  private final AtomicBoolean writableWanted = new AtomicBoolean();
  private final AtomicBoolean drainedWanted = new AtomicBoolean();
  private volatile SocketChannel channel;
  private volatile boolean closed;
  private volatile boolean closedByPeer;
  private Thread thread;

  LinkSender(
      Host link, InetSocketAddress address, TensorLinkFormat.Handshake handshake, byte[] key, ActorRef<Event> events) {
    this.link = link;
    this.address = address;
    this.handshake = handshake;
    this.key = key.clone();
    this.events = events;
    this.maxBytesInFlight = link.settings().maxBytesInFlight();
  }

  void start(String name) {
    thread = new Thread(this, name);
    thread.setDaemon(true);
    thread.start();
  }

  Thread thread() {
    return thread;
  }

  /** Where this sender connects to, for logs. */
  String address() {
    return address.getHostString() + ":" + address.getPort();
  }

  /**
   * Queues {@code frame} for the writer unless the queue is full or the connection is closed;
   * never blocks. A frame is always taken when nothing is queued, so one larger than the limit
   * still goes.
   *
   * @return false if the caller must keep the frame and offer it again after a {@link Writable}
   *     (or send it elsewhere after a {@link Down})
   */
  boolean offer(Frame frame) {
    if (closed) {
      // The peer keeps it; the Down on its way makes it send it over Artery, safely, since this
      // frame never reached the socket.
      return false;
    }
    long bytes = frameBytes(frame);
    if (!reserve(bytes)) {
      writableWanted.set(true);
      // The writer may have emptied the queue between the failed reserve and the flag, without
      // seeing the flag; then nobody would send the Writable.
      if (!reserve(bytes)) {
        return false;
      }
    }
    queue.add(frame);
    return true;
  }

  /**
   * Asks for a {@link Drained} once no offered frame is left to encode.
   *
   * @return false if that is already so (then no event follows)
   */
  boolean awaitDrained() {
    drainedWanted.set(true);
    // As in offer: the writer may have reached zero just before the flag was up.
    if (bytesInFlight.get() == 0 && drainedWanted.compareAndSet(true, false)) {
      return false;
    }
    return true;
  }

  /**
   * Closes the connection for the peer that owns it, which hears nothing more; queued chunks are
   * dropped. Never blocks.
   */
  void close() {
    closedByPeer = true;
    shutDown();
  }

  /** Closes the connection; the peer hears {@link Down} unless it closed it itself. */
  void shutDown() {
    closed = true;
    SocketChannel c = channel;
    if (c != null) {
      try {
        c.close();
      } catch (IOException e) {
        log.debug("closing a tensor link failed", e);
      }
    }
    // Wakes a writer waiting for frames; one blocked in a write is woken by the closed socket.
    queue.add(CLOSE);
  }

  @Override
  public void run() {
    String failure = "closed";
    try (SocketChannel c = SocketChannel.open()) {
      channel = c;
      if (closed) {
        return;
      }
      c.setOption(StandardSocketOptions.TCP_NODELAY, true);
      c.socket().connect(address, (int) link.settings().setupTimeout().toMillis());
      TensorLinkFormat.writeHandshake(handshake, c);
      byte reply = TensorLinkFormat.readReply(c);
      if (reply == TensorLinkFormat.CHALLENGE) {
        byte[] nonce = TensorLinkFormat.readSecretSized(c);
        TensorLinkFormat.writeProof(TensorLinkFormat.proof(key, nonce, handshake), c);
        reply = TensorLinkFormat.readReply(c);
      }
      if (reply != TensorLinkFormat.ACCEPTED) {
        failure = switch (reply) {
          case TensorLinkFormat.UNKNOWN_TARGET -> "the neighbour's node no longer knows peer " + Long.toHexString(handshake.target());
          case TensorLinkFormat.UNAUTHENTICATED -> "the neighbour's node refused the key of peer " + Long.toHexString(handshake.target());
          case TensorLinkFormat.UNSUPPORTED_VERSION -> "the neighbour's node speaks another tensor link version";
          default -> "the neighbour's node answered the handshake with " + reply;
        };
        return;
      }
      events.tell(new Up(this));
      writeLoop(c);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      failure = e.toString();
    } finally {
      closed = true;
      link.ended(this);
      queue.clear();
      if (!closedByPeer) {
        events.tell(new Down(this, link.isClosed() ? "this node's tensor link was closed" : failure));
      }
    }
  }

  private void writeLoop(SocketChannel c) throws IOException, InterruptedException {
    TensorLinkFormat.FrameWriter writer = new TensorLinkFormat.FrameWriter(c, handshake, link.settings().bufferBytes());
    while (!closed) {
      Frame frame = queue.take();
      // Frames that are already queued share the buffer's writes; the last partial buffer goes
      // out as soon as the queue is empty, so a lone small chunk is never held back.
      while (frame != null && frame != CLOSE) {
        writer.write(frame.step(), frame.round(), frame.chunk(), frame.offset(), frame.buffer(), frame.offset(), frame.length(),
            frame.corrupt());
        release(frameBytes(frame));
        frame = queue.poll();
      }
      writer.flush();
    }
  }

  private boolean reserve(long bytes) {
    while (true) {
      long now = bytesInFlight.get();
      if (now > 0 && now + bytes > maxBytesInFlight) {
        return false;
      }
      if (bytesInFlight.compareAndSet(now, now + bytes)) {
        return true;
      }
    }
  }

  private void release(long bytes) {
    long left = bytesInFlight.addAndGet(-bytes);
    if (left <= maxBytesInFlight / 2 && writableWanted.getAndSet(false)) {
      events.tell(new Writable(this));
    }
    if (left == 0 && drainedWanted.getAndSet(false)) {
      events.tell(new Drained(this));
    }
  }

  private static long frameBytes(Frame frame) {
    return FRAME_OVERHEAD + (long) Float.BYTES * frame.length();
  }
}
