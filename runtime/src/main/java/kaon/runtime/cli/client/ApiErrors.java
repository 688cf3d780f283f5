package kaon.runtime.cli.client;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;

/**
 * Turns what went wrong in a call to Kaon's API into one line a person can act on, and the exit
 * code scripts can test:
 *
 * <ul>
 *   <li>{@value #JOB_FAILED}: the job failed or was cancelled, there is no such job, or the job's
 *       state does not allow the request (NOT_FOUND, FAILED_PRECONDITION);
 *   <li>{@value #USAGE}: the request itself is wrong: an invalid job spec (INVALID_ARGUMENT), a
 *       request id reused for another spec (ALREADY_EXISTS); spec files that do not parse get this
 *       code too;
 *   <li>{@value #ENVIRONMENT}: Kaon cannot be reached, refused the token, did not answer in time,
 *       or answered something this client does not understand.
 * </ul>
 *
 * <p>Stack traces only with {@code KAON_DEBUG} set: the message is what users need, the trace is
 * for whoever debugs Kaon.
 */
public final class ApiErrors {

  /** The job failed or was cancelled, or the job does not exist or cannot take the request. */
  public static final int JOB_FAILED = 1;
  /** The command line or the job spec is wrong. */
  public static final int USAGE = 2;
  /** Kaon is not reachable or not usable from here. */
  public static final int ENVIRONMENT = 3;

  /** Unwrapping stops here; real chains are two or three deep. */
  private static final int MAX_CAUSES = 16;

  /** What to tell the user, and the exit code. */
  public record Failure(String message, int exitCode) {}

  private ApiErrors() {}

  /**
   * The user's message and exit code for a failed call to {@code target}. Accepts the failure as
   * thrown, wrapped in {@link ExecutionException} or {@link CompletionException} or not.
   */
  public static Failure describe(Throwable error, ApiConnection.Target target) {
    Throwable cause = unwrap(error);
    if (cause instanceof TimeoutException) {
      return noAnswer(target);
    }
    Optional<Status> status = status(error);
    if (status.isEmpty()) {
      return new Failure(cause.getMessage() == null ? cause.toString() : cause.getMessage(), ENVIRONMENT);
    }
    String description = Optional.ofNullable(status.get().getDescription()).orElse("");
    return switch (status.get().getCode()) {
      case UNAVAILABLE -> unreachable(error, target);
      case UNAUTHENTICATED -> new Failure(target.token().isPresent()
          ? "the server at " + target.endpoint() + " refused the token (check --token-file, KAON_TOKEN or "
              + ConnectionOptions.TOKEN_FILE_HINT + ")"
          : "the server at " + target.endpoint() + " needs a token (pass --token-file or set KAON_TOKEN; on the "
              + "node's machine it is in " + ConnectionOptions.TOKEN_FILE_HINT + ")",
          ENVIRONMENT);
      case PERMISSION_DENIED -> new Failure("the server at " + target.endpoint() + " refused: " + description, ENVIRONMENT);
      case INVALID_ARGUMENT -> new Failure("invalid job spec: " + description, USAGE);
      case ALREADY_EXISTS -> new Failure(description, USAGE);
      case NOT_FOUND, FAILED_PRECONDITION -> new Failure(description, JOB_FAILED);
      case DEADLINE_EXCEEDED -> noAnswer(target);
      case UNIMPLEMENTED -> new Failure("Kaon at " + target.endpoint() + " does not offer this call (an older "
          + "version?): " + description, ENVIRONMENT);
      default -> new Failure("Kaon at " + target.endpoint() + " answered " + status.get().getCode()
          + (description.isEmpty() ? "" : ": " + description), ENVIRONMENT);
    };
  }

  /**
   * Whether another node may answer where this one did not: it could not be reached, did not
   * answer in time, or said it cannot serve now. Every node serves the same API over the same
   * cluster, so the next endpoint is worth a try; anything else it would answer the same way.
   */
  public static boolean tryAnother(Throwable error) {
    if (unwrap(error) instanceof TimeoutException) {
      return true;
    }
    Optional<Status> status = status(error);
    return status.isPresent()
        && (status.get().getCode() == Status.Code.UNAVAILABLE || status.get().getCode() == Status.Code.DEADLINE_EXCEEDED);
  }

  /**
   * Prints {@code kaon: <message>} (and, with {@code KAON_DEBUG} set, the stack trace of {@code
   * error}) and returns the exit code.
   */
  public static int report(Failure failure, Throwable error, PrintWriter err) {
    err.println("kaon: " + failure.message());
    if (System.getenv("KAON_DEBUG") != null) {
      error.printStackTrace(err);
    }
    err.flush();
    return failure.exitCode();
  }

  private static Failure unreachable(Throwable error, ApiConnection.Target target) {
    Optional<Throwable> tls = firstCause(error, SSLException.class);
    if (tls.isPresent()) {
      return new Failure("cannot speak TLS with Kaon at " + target.endpoint() + ": " + tls.get().getMessage()
          + " (check --tls and --tls-ca, or KAON_TLS and KAON_TLS_CA)", ENVIRONMENT);
    }
    return new Failure("cannot reach Kaon at " + target.endpoint()
        + " (is `kaon node` running? set --endpoint or KAON_ENDPOINT)", ENVIRONMENT);
  }

  private static Failure noAnswer(ApiConnection.Target target) {
    return new Failure("no answer from Kaon at " + target.endpoint() + " within "
        + ApiConnection.CALL_TIMEOUT.toSeconds() + " s", ENVIRONMENT);
  }

  /** The first cause that is not just a wrapper of the future that carried it. */
  private static Throwable unwrap(Throwable error) {
    Throwable cause = error;
    for (int i = 0; i < MAX_CAUSES
        && (cause instanceof ExecutionException || cause instanceof CompletionException)
        && cause.getCause() != null; i++) {
      cause = cause.getCause();
    }
    return cause;
  }

  private static Optional<Status> status(Throwable error) {
    return firstCause(error, StatusRuntimeException.class).map(e -> ((StatusRuntimeException) e).getStatus())
        .or(() -> firstCause(error, StatusException.class).map(e -> ((StatusException) e).getStatus()));
  }

  private static Optional<Throwable> firstCause(Throwable error, Class<? extends Throwable> type) {
    Throwable cause = error;
    for (int i = 0; i < MAX_CAUSES && cause != null; i++, cause = cause.getCause()) {
      if (type.isInstance(cause)) {
        return Optional.of(cause);
      }
    }
    return Optional.empty();
  }
}
