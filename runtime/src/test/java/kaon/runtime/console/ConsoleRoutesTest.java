package kaon.runtime.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import org.junit.jupiter.api.Test;

class ConsoleRoutesTest {

  @Test
  void theConsoleTakesItsOwnPathsAndLeavesEveryGrpcMethodToTheApi() {
    assertTrue(ConsoleRoutes.handles("/"));
    assertTrue(ConsoleRoutes.handles("/console"));
    assertTrue(ConsoleRoutes.handles("/console/api/jobs"));
    assertFalse(ConsoleRoutes.handles("/kaon.v1.JobService/SubmitJob"));
    assertFalse(ConsoleRoutes.handles("/grpc.health.v1.Health/Check"));
    assertFalse(ConsoleRoutes.handles("/consoles"));
  }

  @Test
  void aRefusalIsJsonWithItsCodeAndAMessageThatCannotBreakOutOfItsString() {
    assertEquals("{\"code\":\"NOT_FOUND\",\"message\":\"job x does not exist\"}",
        ConsoleRoutes.errorJson(Status.NOT_FOUND.withDescription("job x does not exist")));
    assertEquals("{\"code\":\"INTERNAL\",\"message\":\"INTERNAL\"}", ConsoleRoutes.errorJson(Status.INTERNAL));
    // Quotes, backslashes, control characters and markup are escaped.
    assertEquals("\"a\\\"b\\\\c\\n\\u003cscript\\u003e\\u0001\"", ConsoleRoutes.quote("a\"b\\c\n<script>\u0001"));
  }
}
