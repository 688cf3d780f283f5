package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class LostNodesTest {

  private static final long SECOND = 1_000_000_000L;

  @Test
  void aLostNodeIsRememberedForItsMemoryOrUntilANodeJoinsAtItsAddress() {
    LostNodes lost = new LostNodes(Duration.ofSeconds(60));
    lost.lost("b", 0);
    lost.lost("a", 10 * SECOND);
    assertEquals(Set.of("a", "b"), lost.current(30 * SECOND));
    assertEquals(Set.of("a"), lost.current(61 * SECOND), "b was lost more than a minute ago");
    lost.joined("a");
    assertEquals(Set.of(), lost.current(62 * SECOND), "a new process joined at a's address");
  }

  @Test
  void theRanksOnLostNodesAreFoundInRankOrder() {
    List<RankPlacement> placed = List.of(new RankPlacement(2, 5, "b", "cpu:1", "", ""),
        new RankPlacement(0, 3, "a", "cpu:0", "", ""), new RankPlacement(1, 4, "b", "cpu:0", "", ""));
    assertEquals(List.of(1, 2), LostNodes.on(Set.of("b"), placed).stream().map(RankPlacement::rank).toList());
    assertEquals(List.of(), LostNodes.on(Set.of("c"), placed));
  }
}
