package kaon.runtime.health;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class ReadinessTest {

  @Test
  void aGatewayThatIsUpWithEverythingAnsweringIsReady() {
    assertEquals(List.of(), Readiness.problems(new Readiness.Facts("Up", null, null, null, true, true)));
  }

  @Test
  void everyReasonIsSaid() {
    assertEquals(List.of(
            "cluster member status is Joining, not Up",
            "journal session: no answer within 2 s",
            "checkpoint session: All host(s) tried for query failed",
            "data directory: /data (kaon.worker.data-dir) is not a readable directory",
            "the gRPC API is not bound yet"),
        Readiness.problems(new Readiness.Facts("Joining", "no answer within 2 s", "All host(s) tried for query failed",
            "/data (kaon.worker.data-dir) is not a readable directory", true, false)));
  }

  @Test
  void aNodeWithoutTheGatewayRoleNeedsNoApi() {
    assertEquals(List.of(), Readiness.problems(new Readiness.Facts("Up", null, null, null, false, false)));
  }
}
