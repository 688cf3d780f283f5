package kaon.actors.allreduce;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * How this node's {@link TensorLink} listens and sends; read once from {@code kaon.allreduce.link}
 * when the link starts.
 *
 * @param hostname where the listener binds and what it tells left neighbours; empty means this
 *     node's canonical Artery hostname, the address its peers already reach it at
 * @param port listening port; 0 lets the OS pick a free one, which is then handed out with each
 *     endpoint (fixed ports are for firewalls)
 * @param maxBytesInFlight bytes of chunks a connection takes before its peer must wait: bounds
 *     what piles up in front of a slow or dead neighbour, while a few chunks in flight keep the
 *     socket busy
 * @param bufferBytes direct buffer of each connection's writer and reader
 * @param setupTimeout how long a peer waits for its neighbour's endpoint and for the connection
 *     and handshake; chunks meanwhile go over Artery
 */
public record TensorLinkSettings(
    String hostname, int port, long maxBytesInFlight, int bufferBytes, Duration setupTimeout) {

  public TensorLinkSettings {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("kaon.allreduce.link.port must be 0-65535, was " + port);
    }
    if (maxBytesInFlight <= 0) {
      throw new IllegalArgumentException("kaon.allreduce.link.max-bytes-in-flight must be positive, was " + maxBytesInFlight);
    }
    if (bufferBytes < 4096) {
      throw new IllegalArgumentException("kaon.allreduce.link.buffer-size must be at least 4 KiB, was " + bufferBytes);
    }
  }

  /** Reads the keys of {@code kaon.allreduce.link}. */
  public static TensorLinkSettings fromConfig(Config link) {
    long buffer = link.getBytes("buffer-size");
    return new TensorLinkSettings(
        link.getString("hostname"),
        link.getInt("port"),
        link.getBytes("max-bytes-in-flight"),
        (int) Math.min(Integer.MAX_VALUE, buffer),
        link.getDuration("setup-timeout"));
  }
}
