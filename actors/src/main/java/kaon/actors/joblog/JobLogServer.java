package kaon.actors.joblog;

import java.util.List;
import kaon.protocol.KryoWireMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * Serves this node's {@link JobLog} to the gateways: every node runs one, registered under {@link
 * #SERVICE_KEY}, and {@code kaon logs} asks all of them. Reading the log is a short copy under its
 * lock, so the actor answers on its own thread.
 */
public final class JobLogServer {

  /** Every node's server registers under this key. */
  public static final ServiceKey<Read> SERVICE_KEY = ServiceKey.create(Read.class, "kaon-job-log");

  /** Asks for the lines of {@code jobId} numbered above {@code after}. */
  public record Read(String jobId, long after, ActorRef<Lines> replyTo) implements KryoWireMessage {}

  /**
   * The lines asked for, oldest first, and the node that logged them.
   *
   * @param node this node's cluster address
   */
  public record Lines(String node, List<JobLog.Line> lines) implements KryoWireMessage {}

  private JobLogServer() {}

  public static Behavior<Read> create(JobLog log, String node) {
    return Behaviors.receiveMessage(read -> {
      read.replyTo().tell(new Lines(node, List.copyOf(log.after(read.jobId(), read.after()))));
      return Behaviors.same();
    });
  }
}
