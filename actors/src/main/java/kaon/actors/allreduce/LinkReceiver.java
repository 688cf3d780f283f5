package kaon.actors.allreduce;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One inbound tensor link connection: on its own thread, reads the handshake, challenges the
 * connecting side to prove the named peer's key, then decodes frames and tells each chunk to that
 * peer. The thread blocks in {@code read}; that is its job, and it is never a dispatcher thread.
 */
final class LinkReceiver implements Runnable {

  private static final Logger log = LoggerFactory.getLogger(LinkReceiver.class);

  /** What a connection needs of the link that accepted it (see TensorLink). */
  interface Host {
    TensorLinkSettings settings();

    /** Buffers chunks are decoded into. */
    ChunkArrayPool arrays();

    /** The peer registered under {@code id}, or null. */
    Target target(long id);

    /** A fresh challenge for a handshake. */
    byte[] nonce();

    void received();

    void dropped();

    void refused();

    void ended(LinkReceiver receiver);

    boolean isClosed();
  }

  /** A peer registered with the link, and the key its inbound connections must prove. */
  record Target(ActorRef<RingMessage> peer, byte[] key) {}

  private final Host link;
  private final SocketChannel channel;
  private volatile long target = -1;
  private volatile boolean closed;
  /** Set once the connecting side proved the key; until then the link's timer may close it. */
  private volatile boolean admitted;
  private Thread thread;

  LinkReceiver(Host link, SocketChannel channel) {
    this.link = link;
    this.channel = channel;
  }

  void start(String name) {
    thread = new Thread(this, name);
    thread.setDaemon(true);
    thread.start();
  }

  Thread thread() {
    return thread;
  }

  /** Id of the peer this connection feeds; -1 until the handshake was read. */
  long target() {
    return target;
  }

  /** Closes the socket, which ends the thread's blocking read. */
  void close() {
    closed = true;
    try {
      channel.close();
    } catch (IOException e) {
      log.debug("closing an inbound tensor link failed", e);
    }
  }

  /**
   * Closes the connection if it has not proved itself yet: a connection that opens and then says
   * nothing, or too slowly, must not keep a thread here.
   */
  void closeUnlessAdmitted() {
    if (!admitted && !closed) {
      link.refused();
      log.warn("closed a tensor link from {} that did not complete its handshake within {}",
          remote(), link.settings().setupTimeout());
      close();
    }
  }

  private String remote() {
    try {
      return String.valueOf(channel.getRemoteAddress());
    } catch (IOException e) {
      return "?";
    }
  }

  @Override
  public void run() {
    String from = "?";
    TensorLinkFormat.Handshake handshake = null;
    try (channel) {
      from = String.valueOf(channel.getRemoteAddress());
      try {
        handshake = TensorLinkFormat.readHandshake(channel);
      } catch (TensorLinkFormat.UnsupportedVersionException e) {
        link.refused();
        TensorLinkFormat.writeReply(TensorLinkFormat.UNSUPPORTED_VERSION, channel);
        log.warn("refused a tensor link from {}: {}", from, e.getMessage());
        return;
      }
      // Set before the look-up: an unregister that removes the peer after the look-up then sees
      // this connection and closes it.
      target = handshake.target();
      Target registered = link.target(target);
      if (registered == null) {
        link.refused();
        TensorLinkFormat.writeReply(TensorLinkFormat.UNKNOWN_TARGET, channel);
        // A peer that stopped a moment ago, or a connection that guessed: either way, said loudly
        // enough to be seen.
        log.warn("refused a tensor link from {} for job {} generation {}: peer {} is not (or no longer) here",
            from, handshake.jobId(), handshake.generation(), Long.toHexString(target));
        return;
      }
      byte[] nonce = link.nonce();
      TensorLinkFormat.writeChallenge(nonce, channel);
      byte[] proof = TensorLinkFormat.readSecretSized(channel);
      if (!TensorLinkFormat.verify(registered.key(), nonce, handshake, proof)) {
        link.refused();
        TensorLinkFormat.writeReply(TensorLinkFormat.UNAUTHENTICATED, channel);
        // The id was right but not the key: a stale or foreign process, or someone probing.
        log.warn("refused a tensor link from {} for job {} generation {}: it does not hold peer {}'s key",
            from, handshake.jobId(), handshake.generation(), Long.toHexString(target));
        return;
      }
      admitted = true;
      TensorLinkFormat.writeReply(TensorLinkFormat.ACCEPTED, channel);
      log.debug("tensor link from {} for job {} generation {} accepted", from, handshake.jobId(), handshake.generation());
      TensorLinkFormat.FrameReader reader =
          new TensorLinkFormat.FrameReader(channel, handshake, link.settings().bufferBytes(), link.arrays()::take);
      TensorChunk chunk;
      while ((chunk = reader.read()) != null) {
        Target peer = link.target(target);
        if (peer == null) {
          // The peer stopped: its generation is over, and so is this connection.
          link.dropped();
          return;
        }
        // Counted before the hand-over, so that nothing the peer does with it is seen first.
        link.received();
        peer.peer().tell(chunk);
      }
    } catch (IOException e) {
      if (!closed && !link.isClosed()) {
        if (!admitted) {
          link.refused();
        }
        log.warn("tensor link from {}{} broke: {}", from,
            handshake == null ? "" : " (job " + handshake.jobId() + " generation " + handshake.generation() + ")",
            e.toString());
      }
    } finally {
      // Also keeps the link's timer from counting a connection that ended by itself.
      closed = true;
      link.ended(this);
    }
  }
}
