package kaon.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Optional;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.junit.jupiter.api.Test;

/** How {@code kaon node} exits: a supervisor restarts it after the cluster removed it, not after a stop. */
class NodeCommandTest {

  @Test
  void aNodeTheClusterDownedExitsWithTheCodeThatGetsItRestarted() {
    assertEquals(NodeCommand.REMOVED, NodeCommand.exitCode(Optional.of(CoordinatedShutdown.clusterDowningReason())));
    assertEquals(NodeCommand.REMOVED, NodeCommand.exitCode(Optional.of(CoordinatedShutdown.clusterJoinUnsuccessfulReason())));
  }

  @Test
  void aNodeAskedToStopExitsWithZero() {
    assertEquals(0, NodeCommand.exitCode(Optional.of(CoordinatedShutdown.jvmExitReason())));
    assertEquals(0, NodeCommand.exitCode(Optional.of(CoordinatedShutdown.clusterLeavingReason())));
    assertEquals(0, NodeCommand.exitCode(Optional.empty()));
  }
}
