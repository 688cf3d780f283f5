package kaon.actors.allreduce;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Objects;
import kaon.protocol.KryoWireMessage;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorLinkFormat;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * The edges of one all-reduce peer to its ring neighbours: how its chunks reach its right
 * neighbour (plain references in this JVM, Artery, or a {@link TensorLink}), and, for its left
 * neighbour's link, its registration in this node's link. On a new right neighbour in another JVM
 * with {@code kaon.allreduce.transport = link}, it asks the neighbour for its link endpoint
 * ({@link LinkEndpointRequest}) and connects; until the link is up, or if it cannot be, chunks go
 * over Artery, so none is lost on the way. A link that goes down hands its unsent chunks back to
 * Artery.
 *
 * <p>Plain state of one {@link AllReducePeer}, used on its thread; the peer passes on the
 * messages below, which it receives as a {@link RingMessage} like any other.
 */
public final class RingEdge {

  /**
   * Asks this peer where its node's tensor link listens for it. Sent by the left neighbour, from
   * another node; the answer registers this peer with its link.
   */
  public record LinkEndpointRequest(ActorRef<LinkEndpoint> replyTo) implements RingMessage, KryoWireMessage {}

  /**
   * Where to open a tensor link to a peer, or why chunks must stay on Artery.
   *
   * @param host the link's listening host
   * @param port the link's listening port
   * @param target the peer's id in that link, named in the handshake
   * @param key what the connection proves it holds ({@link TensorLinkFormat}); secret, so it
   *     travels only in this message, over Artery (mutual TLS on VMs), and is never logged
   * @param unavailable null if the other fields are valid, else why there is no link
   */
  public record LinkEndpoint(String host, int port, long target, byte[] key, String unavailable)
      implements KryoWireMessage {

    /** Compares the key by content, which a record would compare by reference. */
    @Override
    public boolean equals(Object other) {
      return other instanceof LinkEndpoint that
          && port == that.port
          && target == that.target
          && Objects.equals(host, that.host)
          && Arrays.equals(key, that.key)
          && Objects.equals(unavailable, that.unavailable);
    }

    @Override
    public int hashCode() {
      return 31 * Objects.hash(host, port, target, unavailable) + Arrays.hashCode(key);
    }

    /** Leaves the key out: messages end up in logs and dead-letter reports. */
    @Override
    public String toString() {
      return "LinkEndpoint[host=" + host + ", port=" + port + ", target=" + Long.toHexString(target)
          + (unavailable == null ? "" : ", unavailable=" + unavailable) + "]";
    }
  }

  /** How chunks reach the right neighbour. */
  public enum Edge {
    /** No ring yet. */
    UNCONNECTED,
    /** Same JVM: plain references, no serialization. */
    IN_JVM,
    /** Artery, by configuration or because no link could be set up. */
    ARTERY,
    /** Artery while a tensor link is being set up. */
    CONNECTING,
    /** The tensor link. */
    LINK
  }

  /**
   * Rank {@code rank} of {@code generation} sends its chunks to its right neighbour over {@code
   * edge} from now on; {@code how} says why in words (the setting, or why a link fell back to Artery).
   */
  public record EdgeChanged(long generation, int rank, Edge edge, String how) {}

  /** The right neighbour's endpoint, or why there is none. */
  record EndpointAnswer(LinkEndpoint endpoint, String failure) implements RingMessage {}

  /** What the link to the right neighbour says about itself. */
  record LinkChanged(LinkSender.Event event) implements RingMessage {}

  private final ActorContext<RingMessage> context;
  private final String jobId;
  private final long generation;
  private final int rank;
  private final int worldSize;
  private final AllReduceSettings settings;
  private ActorRef<RingMessage> right;
  private Edge edge = Edge.UNCONNECTED;
  /** Who hears of every change of {@link #edge} (the peer's worker, which reports it); may be null. */
  private ActorRef<EdgeChanged> listener;
  /** The tensor link to the right neighbour, while it is being set up and while it is up. */
  private LinkSender link;
  /** Frames for the link that its queue had no room for yet, in sending order. */
  private final ArrayDeque<LinkSender.Frame> waitingForLink = new ArrayDeque<>();
  private ActorRef<LinkSender.Event> linkEvents;
  private long linkChunksSent;
  /** This peer's id and key in its node's tensor link, once a left neighbour asked; else null. */
  private TensorLink.Registration linkTarget;
  /** Where received chunk arrays go back to for the link's readers, once a left neighbour linked. */
  private ChunkArrayPool recycled;

  RingEdge(ActorContext<RingMessage> context, String jobId, long generation, int rank, int worldSize,
      AllReduceSettings settings) {
    this.context = context;
    this.jobId = jobId;
    this.generation = generation;
    this.rank = rank;
    this.worldSize = worldSize;
    this.settings = settings;
  }

  ActorRef<RingMessage> right() {
    return right;
  }

  Edge edge() {
    return edge;
  }

  long linkChunksSent() {
    return linkChunksSent;
  }

  /**
   * Chunks go to {@code newRight} from now on, over the transport it can be reached by; {@code
   * newListener} (may be null) hears of each change of that transport.
   */
  void connect(ActorRef<RingMessage> newRight, ActorRef<EdgeChanged> newListener) {
    right = newRight;
    listener = newListener;
    closeLink();
    if (isInThisJvm(right)) {
      use(Edge.IN_JVM, "plain references in this JVM");
    } else if (settings.transport() == AllReduceSettings.Transport.ARTERY) {
      use(Edge.ARTERY, "Artery (kaon.allreduce.transport = artery)");
    } else {
      changed(Edge.CONNECTING, "Artery while a tensor link is set up");
      try {
        context.ask(LinkEndpoint.class, right, TensorLink.get(context.getSystem()).settings().setupTimeout(),
            LinkEndpointRequest::new,
            (endpoint, failure) -> new EndpointAnswer(endpoint, failure == null ? null : failure.toString()));
      } catch (RuntimeException e) {
        use(Edge.ARTERY, "Artery, since this node's tensor link cannot start: " + e);
      }
    }
  }

  private boolean isInThisJvm(ActorRef<RingMessage> peer) {
    // Refs to local actors carry no host; a ref that came back through serialization carries
    // this system's own address.
    Address address = peer.path().address();
    return !address.hasGlobalScope() || address.equals(context.getSystem().address());
  }

  private void use(Edge newEdge, String how) {
    changed(newEdge, how);
    context.getLog().info("job {} generation {}: ring edge rank {} -> rank {} ({}) uses {}",
        jobId, generation, rank, (rank + 1) % worldSize, right.path().address(), how);
  }

  private void changed(Edge newEdge, String how) {
    edge = newEdge;
    if (listener != null) {
      listener.tell(new EdgeChanged(generation, rank, newEdge, how));
    }
  }

  /** The left neighbour asks where this node's link listens for this peer: registers it there. */
  void answer(LinkEndpointRequest request) {
    if (settings.transport() != AllReduceSettings.Transport.LINK) {
      request.replyTo().tell(new LinkEndpoint(null, 0, -1, null,
          "kaon.allreduce.transport is artery on " + context.getSystem().address()));
      return;
    }
    try {
      TensorLink tensorLink = TensorLink.get(context.getSystem());
      if (linkTarget == null) {
        linkTarget = tensorLink.register(context.getSelf());
        recycled = tensorLink.arrays();
      }
      request.replyTo().tell(new LinkEndpoint(tensorLink.host(), tensorLink.port(), linkTarget.id(), linkTarget.key(), null));
    } catch (RuntimeException e) {
      request.replyTo().tell(new LinkEndpoint(null, 0, -1, null, "the tensor link of "
          + context.getSystem().address() + " cannot start: " + e));
    }
  }

  void onEndpointAnswer(EndpointAnswer answer) {
    if (edge != Edge.CONNECTING || link != null) {
      return;
    }
    LinkEndpoint endpoint = answer.endpoint();
    if (endpoint == null || endpoint.unavailable() != null) {
      use(Edge.ARTERY, "Artery, since no tensor link could be set up: "
          + (endpoint == null ? answer.failure() : endpoint.unavailable()));
      return;
    }
    if (linkEvents == null) {
      linkEvents = context.messageAdapter(LinkSender.Event.class, LinkChanged::new);
    }
    try {
      link = TensorLink.get(context.getSystem()).connect(endpoint.host(), endpoint.port(),
          new TensorLinkFormat.Handshake(endpoint.target(), jobId, generation), endpoint.key(), linkEvents);
    } catch (RuntimeException e) {
      use(Edge.ARTERY, "Artery, since no tensor link could be set up: " + e);
    }
  }

  /** The link's news; true when the link may have finished reading a completed round's buffer. */
  boolean onLinkChanged(LinkChanged changed) {
    LinkSender.Event event = changed.event();
    if (event.sender() != link) {
      return false; // a sender this peer closed already
    }
    if (event instanceof LinkSender.Up) {
      use(Edge.LINK, "a tensor link to " + link.address());
      return false;
    } else if (event instanceof LinkSender.Writable) {
      offerWaiting();
      return true;
    } else if (event instanceof LinkSender.Drained) {
      return true;
    } else if (event instanceof LinkSender.Down down) {
      link = null;
      String how = "Artery from now on, since the tensor link to " + down.sender().address() + " is down: " + down.reason();
      if (edge == Edge.LINK) {
        changed(Edge.ARTERY, how);
        context.getLog().warn("job {} generation {}: ring edge rank {} -> rank {} uses {}",
            jobId, generation, rank, (rank + 1) % worldSize, how);
      } else {
        use(Edge.ARTERY, how);
      }
      // These were never given to the link, so Artery carries them without any risk of a
      // duplicate; their regions are unchanged, since the neighbour has not seen them yet.
      while (!waitingForLink.isEmpty()) {
        LinkSender.Frame frame = waitingForLink.poll();
        right.tell(new TensorChunk(jobId, generation, frame.step(), frame.round(), frame.chunk(), frame.offset(),
            Arrays.copyOfRange(frame.buffer(), frame.offset(), frame.offset() + frame.length())));
      }
      return true; // the writer has stopped, so the link reads the buffer no more
    }
    return false;
  }

  /** Sends {@code frame} over the link, or queues it behind those waiting for room. */
  void offer(LinkSender.Frame frame) {
    if (waitingForLink.isEmpty() && link.offer(frame)) {
      linkChunksSent++;
    } else {
      waitingForLink.add(frame);
    }
  }

  private void offerWaiting() {
    while (!waitingForLink.isEmpty() && link.offer(waitingForLink.peek())) {
      waitingForLink.poll();
      linkChunksSent++;
    }
  }

  /** Whether the link reads no buffer any more; if it does, it says so when done ({@link LinkSender.Drained}). */
  boolean linkDone() {
    return link == null || (waitingForLink.isEmpty() && !link.awaitDrained());
  }

  /**
   * A completed round's chunks are still not written after {@code min-round-timeout}: the
   * neighbour stopped reading and the writer is stuck in a blocked write. Closing the socket ends
   * it; its Down then releases the round's reply (the sums here are complete) and the neighbour,
   * short of chunks, misses its own deadline.
   */
  void unstick(long step) {
    if (link != null) {
      context.getLog().warn("job {} generation {}: rank {} closes its tensor link to {}: step {} still not written after {} ms",
          jobId, generation, rank, link.address(), step, settings.minRoundTimeout().toMillis());
      link.shutDown();
    }
  }

  /** A chunk array received over this node's link goes back to the link's readers. */
  void recycle(float[] array) {
    if (recycled != null) {
      recycled.give(array);
    }
  }

  private void closeLink() {
    if (link != null) {
      link.close();
      link = null;
    }
    waitingForLink.clear();
  }

  /** The peer stops: its link closes, and it leaves its node's link registry. */
  void close() {
    closeLink();
    if (linkTarget != null) {
      TensorLink.get(context.getSystem()).unregister(linkTarget.id());
    }
  }
}
