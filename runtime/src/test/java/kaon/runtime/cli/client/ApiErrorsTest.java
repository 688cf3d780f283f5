package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.grpc.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

class ApiErrorsTest {

  private static final ApiConnection.Target TARGET = ApiConnection.Target.plaintext("10.0.0.5", 50051, Optional.empty());

  private static ApiErrors.Failure describe(Status status) {
    // As a failed future hands it over.
    return ApiErrors.describe(new ExecutionException(new CompletionException(status.asRuntimeException())), TARGET);
  }

  @Test
  void anUnreachableServerIsAnEnvironmentProblemNamingTheEndpoint() {
    assertEquals(new ApiErrors.Failure(
            "cannot reach Kaon at 10.0.0.5:50051 (is `kaon node` running? set --endpoint or KAON_ENDPOINT)", 3),
        describe(Status.UNAVAILABLE.withDescription("io exception")));
  }

  @Test
  void aRefusedTokenSaysWhereTokensComeFrom() {
    ApiErrors.Failure withToken = ApiErrors.describe(Status.UNAUTHENTICATED.asRuntimeException(),
        ApiConnection.Target.plaintext("10.0.0.5", 50051, Optional.of("t")));
    assertEquals(new ApiErrors.Failure("the server at 10.0.0.5:50051 refused the token (check --token-file, "
        + "KAON_TOKEN or ${XDG_CONFIG_HOME:-~/.config}/kaon/token)", 3), withToken);
    assertEquals(3, describe(Status.UNAUTHENTICATED).exitCode());
  }

  @Test
  void anInvalidSpecIsAUsageErrorWithTheServersDescription() {
    assertEquals(new ApiErrors.Failure("invalid job spec: epochs: must be at least 1, was 0", 2),
        describe(Status.INVALID_ARGUMENT.withDescription("epochs: must be at least 1, was 0")));
  }

  @Test
  void aMissingJobOrARefusedChangeIsExitCode1() {
    assertEquals(new ApiErrors.Failure("no job job-9", 1), describe(Status.NOT_FOUND.withDescription("no job job-9")));
    assertEquals(1, describe(Status.FAILED_PRECONDITION.withDescription("job-1 has already ended")).exitCode());
    assertEquals(2, describe(Status.ALREADY_EXISTS.withDescription("request r-1 was for another spec")).exitCode());
  }

  @Test
  void noAnswerInTimeIsAnEnvironmentProblem() {
    assertEquals(new ApiErrors.Failure("no answer from Kaon at 10.0.0.5:50051 within 30 s", 3),
        ApiErrors.describe(new TimeoutException(), TARGET));
  }

  @Test
  void reportsOneLineWithoutAStackTrace() {
    StringWriter err = new StringWriter();
    int code = ApiErrors.report(describe(Status.NOT_FOUND.withDescription("no job job-9")),
        new IllegalStateException(), new PrintWriter(err));
    assertEquals(1, code);
    assertEquals("kaon: no job job-9" + System.lineSeparator(), err.toString());
    assertFalse(err.toString().contains("\tat "));
  }
}
