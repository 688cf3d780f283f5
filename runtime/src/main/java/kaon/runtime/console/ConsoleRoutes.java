package kaon.runtime.console;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Status;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import kaon.protocol.v1.CancelJobRequest;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.StreamJobLogsRequest;
import kaon.protocol.v1.WatchJobRequest;
import kaon.runtime.grpc.ClusterServiceImpl;
import kaon.runtime.grpc.JobServiceImpl;
import org.apache.pekko.NotUsed;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;
import org.apache.pekko.grpc.javadsl.MetadataBuilder;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.Uri;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.pf.PFBuilder;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * The web console, served by every gateway node on its API port: the page and its script from
 * the classpath ({@code kaon/console/}), and under {@code /console/api/} the same calls the CLI
 * makes, as JSON (the API's messages in protobuf's JSON form) through the very {@link
 * JobServiceImpl} and {@link ClusterServiceImpl} that answer gRPC, so the console can neither see
 * more nor be checked less than the API: every {@code api/} call carries the API's bearer token in
 * its {@code Authorization} header. A job's live view is {@code WatchJob} as server-sent events,
 * and its log {@code StreamJobLogs}, following.
 *
 * <p>The static files need no token: they hold no data, and the page must load to ask for it.
 */
public final class ConsoleRoutes extends AllDirectives {

  private static final ContentType EVENT_STREAM = ContentTypes.parse("text/event-stream");
  /** A comment line now and then keeps proxies and the browser from closing a quiet stream. */
  private static final Duration KEEP_ALIVE = Duration.ofSeconds(15);
  /** Log lines a job page starts with: its story so far, not the whole of a long job. */
  private static final int LOG_TAIL = 500;
  private static final JsonFormat.Printer JSON = JsonFormat.printer().omittingInsignificantWhitespace();
  /** Only this origin's script and style: the page renders job data, which must never run. */
  private static final HttpHeader POLICY = RawHeader.create("Content-Security-Policy",
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'");

  private final JobServiceImpl jobs;
  private final ClusterServiceImpl cluster;

  public ConsoleRoutes(JobServiceImpl jobs, ClusterServiceImpl cluster) {
    this.jobs = jobs;
    this.cluster = cluster;
  }

  /** True for the paths the console answers; every other path is the API's. */
  public static boolean handles(String path) {
    return path.equals("/") || path.equals("/console") || path.startsWith("/console/");
  }

  public Route route() {
    return respondWithHeaders(java.util.List.of(POLICY, RawHeader.create("X-Content-Type-Options", "nosniff")), () -> concat(
        pathSingleSlash(() -> redirect(Uri.create("/console/"), StatusCodes.SEE_OTHER)),
        pathPrefix("console", () -> concat(
            pathEnd(() -> redirect(Uri.create("/console/"), StatusCodes.SEE_OTHER)),
            pathSingleSlash(() -> get(() -> getFromResource("kaon/console/index.html"))),
            pathPrefix("api", () -> optionalHeaderValueByName("Authorization", auth -> api(metadata(auth)))),
            get(() -> getFromResourceDirectory("kaon/console"))))));
  }

  private Route api(Metadata auth) {
    return respondWithHeader(RawHeader.create("Cache-Control", "no-store"), () -> concat(
        path("jobs", () -> get(() -> json(() -> jobs.listJobs(ListJobsRequest.getDefaultInstance(), auth)))),
        pathPrefix("jobs", () -> pathPrefix(PathMatchers.segment(), id -> concat(
            pathEnd(() -> get(() -> json(() -> jobs.getJob(GetJobRequest.newBuilder().setJobId(id).build(), auth)))),
            path("events", () -> get(() -> complete(events(id, auth)))),
            path("logs", () -> get(() -> complete(logs(id, auth)))),
            path("cancel", () -> post(() -> json(() -> jobs.cancelJob(CancelJobRequest.newBuilder().setJobId(id).build(), auth))))))),
        path("cluster", () -> get(() -> completeWithFuture(clusterJson(auth))))));
  }

  /** Members and devices in one answer: the cluster page shows both, and who owns each device. */
  private CompletionStage<HttpResponse> clusterJson(Metadata auth) {
    return call(() -> {
      var members = cluster.listMembers(ListMembersRequest.getDefaultInstance(), auth).toCompletableFuture();
      return cluster.listDevices(ListDevicesRequest.getDefaultInstance(), auth).thenCombine(members, (devices, m) ->
          "{\"members\":" + print(m) + ",\"devices\":" + print(devices) + "}");
    });
  }

  private Route json(Supplier<CompletionStage<? extends MessageOrBuilder>> call) {
    return completeWithFuture(call(() -> call.get().thenApply(ConsoleRoutes::print)));
  }

  /** The call's JSON, or its gRPC status as the HTTP status a browser's script can branch on. */
  private static CompletionStage<HttpResponse> call(Supplier<CompletionStage<String>> call) {
    CompletionStage<String> answer;
    try {
      answer = call.get(); // the token is checked before the call returns its stage
    } catch (RuntimeException e) {
      answer = CompletableFuture.failedFuture(e);
    }
    return answer.handle((body, error) -> error == null
        ? HttpResponse.create().withEntity(ContentTypes.APPLICATION_JSON, body)
        : failure(error));
  }

  /**
   * {@code WatchJob} as server-sent events: each {@link JobEvent} as one {@code data:} line of
   * JSON, and an {@code event: failure} with the status when the watch fails. The stream ends when
   * the job ends, as the gRPC stream does.
   */
  private HttpResponse events(String id, Metadata auth) {
    return serverSent(() -> jobs.watchJob(WatchJobRequest.newBuilder().setJobId(id).build(), auth));
  }

  /** {@code StreamJobLogs}, following, from its newest {@value #LOG_TAIL} lines, as server-sent events. */
  private HttpResponse logs(String id, Metadata auth) {
    return serverSent(() -> jobs.streamJobLogs(
        StreamJobLogsRequest.newBuilder().setJobId(id).setFollow(true).setTail(LOG_TAIL).build(), auth));
  }

  private static HttpResponse serverSent(Supplier<Source<? extends MessageOrBuilder, NotUsed>> stream) {
    Source<? extends MessageOrBuilder, NotUsed> messages;
    try {
      messages = stream.get(); // the token is checked before the stream is made
    } catch (RuntimeException e) {
      return failure(e);
    }
    Source<ByteString, NotUsed> lines = messages
        .map(event -> ByteString.fromString("data: " + print(event) + "\n\n"))
        .recover(new PFBuilder<Throwable, ByteString>()
            .match(GrpcServiceException.class, e -> ByteString.fromString("event: failure\ndata: " + errorJson(e.status()) + "\n\n"))
            .build())
        .keepAlive(KEEP_ALIVE, () -> ByteString.fromString(":\n\n"));
    return HttpResponse.create().withEntity(HttpEntities.createChunked(EVENT_STREAM, lines));
  }

  private static HttpResponse failure(Throwable error) {
    Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
    Status status = cause instanceof GrpcServiceException g ? g.status() : Status.INTERNAL.withDescription(cause.toString());
    int http = switch (status.getCode()) {
      case UNAUTHENTICATED -> 401;
      case PERMISSION_DENIED -> 403;
      case NOT_FOUND -> 404;
      case INVALID_ARGUMENT -> 400;
      case FAILED_PRECONDITION, ALREADY_EXISTS -> 409;
      case UNAVAILABLE, DEADLINE_EXCEEDED -> 503;
      default -> 500;
    };
    return HttpResponse.create().withStatus(http).withEntity(ContentTypes.APPLICATION_JSON, errorJson(status));
  }

  /** {@code {"code":"NOT_FOUND","message":"..."}}: what the page shows for a refused call. */
  static String errorJson(Status status) {
    String message = status.getDescription() == null ? status.getCode().name() : status.getDescription();
    return "{\"code\":\"" + status.getCode().name() + "\",\"message\":" + quote(message) + "}";
  }

  /** {@code text} as a JSON string, escaped by protobuf's own printer (markup characters included). */
  static String quote(String text) {
    return print(com.google.protobuf.Value.newBuilder().setStringValue(text));
  }

  private static Metadata metadata(Optional<String> authorization) {
    MetadataBuilder builder = new MetadataBuilder();
    authorization.ifPresent(value -> builder.addText("authorization", value));
    return builder.build();
  }

  private static String print(MessageOrBuilder message) {
    try {
      return JSON.print(message);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("every API message prints as JSON", e);
    }
  }
}
