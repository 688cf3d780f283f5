package kaon.runtime.grpc;

import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import kaon.actors.job.JobStatus;
import kaon.actors.joblog.JobLog;
import kaon.actors.joblog.JobLogServer;
import kaon.protocol.v1.LogLine;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.javadsl.Source;

/**
 * A job's log lines from every node ({@code StreamJobLogs}): each round asks every node's {@link
 * JobLogServer} for the lines after the last it sent, and sends the round's lines in time order.
 * Following, a round runs every second until the job has ended, then once more for the lines its
 * end left. A node that does not answer in a round is asked again in the next, from where it was:
 * its lines come late, never twice and never lost while it keeps them.
 */
final class JobLogStream {

  private static final Duration ROUND = Duration.ofSeconds(1);
  private static final Duration ASK = Duration.ofSeconds(3);
  private static final Comparator<LogLine> TIME_ORDER =
      Comparator.comparingLong(LogLine::getAtMillis).thenComparing(LogLine::getNode);

  private final ActorSystem<?> system;
  private final Function<String, CompletionStage<JobStatus>> status;

  JobLogStream(ActorSystem<?> system, Function<String, CompletionStage<JobStatus>> status) {
    this.system = system;
    this.status = status;
  }

  /** Where a stream is: per node, the number of the last line sent; and what the next round is. */
  private record Round(Map<ActorRef<JobLogServer.Read>, Long> after, boolean first, boolean last, boolean done) {}

  Source<LogLine, NotUsed> lines(String jobId, boolean follow, int tail) {
    return Source.completionStage(status.apply(jobId)).flatMapConcat(s -> {
      if (s.phase() == JobStatus.Phase.UNKNOWN) {
        throw new GrpcServiceException(s.health().isEmpty()
            ? Status.NOT_FOUND.withDescription("job " + jobId + " does not exist")
            : Status.UNAVAILABLE.withDescription("job " + jobId + ": " + s.health()));
      }
      // A job that has ended already gets one round, following or not.
      boolean once = !follow || s.phase().isTerminal();
      return Source.unfoldAsync(new Round(Map.of(), true, once, false), r -> round(jobId, r, tail))
          .mapConcat(lines -> lines);
    });
  }

  private CompletionStage<Optional<Pair<Round, List<LogLine>>>> round(String jobId, Round r, int tail) {
    if (r.done()) {
      return CompletableFuture.completedFuture(Optional.empty());
    }
    CompletionStage<Void> waited = r.first() ? CompletableFuture.completedFuture(null)
        : CompletableFuture.runAsync(() -> {}, CompletableFuture.delayedExecutor(ROUND.toMillis(),
            java.util.concurrent.TimeUnit.MILLISECONDS, system.executionContext()));
    return waited.thenCompose(w -> read(jobId, r.after())).thenCompose(read -> {
      List<LogLine> lines = read.first();
      if (r.first() && tail > 0 && lines.size() > tail) {
        lines = lines.subList(lines.size() - tail, lines.size());
      }
      List<LogLine> sent = lines;
      if (r.last()) {
        return CompletableFuture.completedFuture(Optional.of(Pair.create(new Round(read.second(), false, true, true), sent)));
      }
      // Once the job has ended, one more round takes the lines its last moments left.
      return status.apply(jobId)
          .handle((s, error) -> error == null && s.phase().isTerminal())
          .thenApply(ended -> Optional.of(Pair.create(new Round(read.second(), false, ended, false), sent)));
    });
  }

  /** Every node's new lines of {@code jobId}, in time order, and the cursors after them. */
  private CompletionStage<Pair<List<LogLine>, Map<ActorRef<JobLogServer.Read>, Long>>> read(
      String jobId, Map<ActorRef<JobLogServer.Read>, Long> after) {
    CompletionStage<Receptionist.Listing> listing = AskPattern.ask(system.receptionist(),
        replyTo -> Receptionist.find(JobLogServer.SERVICE_KEY, replyTo), ASK, system.scheduler());
    return listing.thenCompose(l -> {
      List<CompletableFuture<Pair<ActorRef<JobLogServer.Read>, JobLogServer.Lines>>> asks = new ArrayList<>();
      for (ActorRef<JobLogServer.Read> server : l.getServiceInstances(JobLogServer.SERVICE_KEY)) {
        long from = after.getOrDefault(server, 0L);
        asks.add(AskPattern.<JobLogServer.Read, JobLogServer.Lines>ask(server,
                replyTo -> new JobLogServer.Read(jobId, from, replyTo), ASK, system.scheduler())
            .thenApply(lines -> Pair.create(server, lines))
            // A node that does not answer now (gone, busy) is asked again from the same place.
            .exceptionally(e -> null)
            .toCompletableFuture());
      }
      return CompletableFuture.allOf(asks.toArray(new CompletableFuture[0])).thenApply(all -> {
        Map<ActorRef<JobLogServer.Read>, Long> next = new HashMap<>(after);
        List<LogLine> lines = new ArrayList<>();
        for (var answered : asks) {
          Pair<ActorRef<JobLogServer.Read>, JobLogServer.Lines> answer = answered.join();
          if (answer == null) {
            continue;
          }
          for (JobLog.Line line : answer.second().lines()) {
            lines.add(LogLine.newBuilder().setAtMillis(line.atMillis()).setNode(answer.second().node())
                .setLevel(line.level()).setLogger(line.logger()).setMessage(line.message()).build());
            next.merge(answer.first(), line.number(), Math::max);
          }
        }
        lines.sort(TIME_ORDER);
        return Pair.create(lines, next);
      });
    });
  }
}
