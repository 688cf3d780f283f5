package kaon.runtime.health;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.job.JobEntity;
import kaon.actors.job.JournalProbe;
import kaon.actors.metrics.KaonMetrics;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * What this node's {@code /alive} and {@code /ready} answer (and the gRPC health service): the
 * node registers its parts here as they start ({@link #started}, {@link #apiBound}), and each
 * probe looks at them afresh. An extension, because Pekko Management creates the routes by itself.
 */
public final class NodeHealth implements Extension {

  /** How long a probe waits for each Cassandra session before calling it unanswered. */
  private static final Duration SESSION_PROBE = Duration.ofSeconds(2);

  private static final ExtensionId<NodeHealth> ID = new ExtensionId<>() {
    @Override
    public NodeHealth createExtension(ActorSystem<?> system) {
      return new NodeHealth(system);
    }
  };

  /** The node's health registry. */
  public static NodeHealth get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** The parts a probe looks at, fixed once the node has started them. */
  private record Parts(CheckpointStore store, String journalSession, Path stateDir, Path dataDir, boolean worker,
      boolean gateway) {}

  private final ActorSystem<?> system;
  private volatile Parts parts;
  private volatile boolean apiBound;

  private NodeHealth(ActorSystem<?> system) {
    this.system = system;
  }

  /**
   * The node's sessions and directories exist.
   *
   * @param stateDir where the node writes (null: not configured)
   * @param dataDir where workers read datasets (null: each task's default)
   */
  public void started(CheckpointStore store, String journalSession, Path stateDir, Path dataDir, boolean worker,
      boolean gateway) {
    parts = new Parts(store, journalSession, stateDir, dataDir, worker, gateway);
  }

  /** The gRPC API is bound and serving. */
  public void apiBound() {
    apiBound = true;
  }

  /** Why the node is not alive (it is shutting down), or empty. */
  public List<String> liveness() {
    return CoordinatedShutdown.get(system).getShutdownReason()
        .map(reason -> List.of("shutting down (" + reason + ")"))
        .orElse(List.of());
  }

  /** Why the node is not ready, one line each; empty when it is. Never fails. */
  public CompletionStage<List<String>> readiness() {
    Parts p = parts;
    String status = Cluster.get(system).selfMember().status().toString();
    if (p == null) {
      return CompletableFuture.completedFuture(Readiness.problems(
          new Readiness.Facts(status, "not started yet", "not started yet", null, false, false)));
    }
    String dataDir = dataDirProblem(p);
    return sessions(p).thenApply(s ->
        Readiness.problems(new Readiness.Facts(status, s.journal(), s.checkpoints(), dataDir, p.gateway(), apiBound)));
  }

  /**
   * Asks both Cassandra sessions (the journal's, the checkpoints') whether they answer, and sets
   * {@code kaon_cassandra_up} for each; completes when both answered or timed out. Nothing before
   * the node started them.
   */
  public CompletionStage<Void> probeCassandra(KaonMetrics metrics) {
    Parts p = parts;
    if (p == null) {
      return CompletableFuture.completedFuture(null);
    }
    return sessions(p).thenAccept(s -> {
      metrics.cassandra("journal", s.journal() == null);
      metrics.cassandra("checkpoints", s.checkpoints() == null);
    });
  }

  /** Why each Cassandra session does not answer (null: it does). */
  private record SessionProblems(String journal, String checkpoints) {}

  /** Asks the journal's and the checkpoints' sessions at once. */
  private CompletableFuture<SessionProblems> sessions(Parts p) {
    CompletableFuture<String> journal = problemOf(() -> JournalProbe.ping(system, p.journalSession()));
    CompletableFuture<String> checkpoints = problemOf(() -> p.store().ping());
    return journal.thenCombine(checkpoints, SessionProblems::new);
  }

  /** The reason {@code probe} failed or did not answer in time, or null when it succeeded. */
  private static CompletableFuture<String> problemOf(Supplier<CompletionStage<?>> probe) {
    CompletionStage<?> stage;
    try {
      stage = probe.get();
    } catch (RuntimeException e) {
      return CompletableFuture.completedFuture(String.valueOf(e.getMessage()));
    }
    return stage.toCompletableFuture()
        .orTimeout(SESSION_PROBE.toMillis(), TimeUnit.MILLISECONDS)
        .handle((ok, error) -> error == null ? null : rootMessage(error));
  }

  private static String dataDirProblem(Parts p) {
    if (p.stateDir() != null) {
      if (!Files.isDirectory(p.stateDir())) {
        return p.stateDir() + " (kaon.node.state-dir) does not exist";
      }
      if (!Files.isWritable(p.stateDir())) {
        return p.stateDir() + " (kaon.node.state-dir) is not writable by this node";
      }
    }
    if (p.worker() && p.dataDir() != null && !(Files.isDirectory(p.dataDir()) && Files.isReadable(p.dataDir()))) {
      return p.dataDir() + " (kaon.worker.data-dir) is not a readable directory";
    }
    return null;
  }

  private static String rootMessage(Throwable error) {
    Throwable t = error;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    if (t instanceof java.util.concurrent.TimeoutException) {
      return "no answer within " + SESSION_PROBE.toSeconds() + " s";
    }
    return t.getMessage() == null ? t.toString() : t.getMessage();
  }
}
