package kaon.actors.allreduce;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Where the chunks of a ring all-reduce go: one rule per test, literal inputs. */
class RingScheduleTest {

  @Test
  void segmentsSplitTheBufferAsEvenlyAsPossible() {
    RingSchedule s = new RingSchedule(3, 10, 4);
    assertEquals(0, s.segmentStart(0));
    assertEquals(3, s.segmentStart(1));
    assertEquals(6, s.segmentStart(2));
    assertEquals(10, s.segmentStart(3));
  }

  @Test
  void aRankReceivesTheSegmentBeforeTheOneItSends() {
    RingSchedule s = new RingSchedule(4, 100, 10);
    assertEquals(3, s.receivedSegment(0, 0));
    assertEquals(0, s.receivedSegment(1, 0));
    assertEquals(2, s.receivedSegment(0, 1));
  }

  @Test
  void theFirstWorldSizeMinusOneRoundsAddAndTheRestCopy() {
    RingSchedule s = new RingSchedule(3, 12, 4);
    assertTrue(s.adds(0) && s.adds(1));
    assertFalse(s.adds(2) || s.adds(3));
    assertEquals(3, s.lastRound());
  }

  @Test
  void chunksCutASegmentAndTheLastIsShort() {
    RingSchedule s = new RingSchedule(2, 10, 3);
    assertEquals(5, s.chunkStart(1, 0));
    assertEquals(8, s.chunkStart(1, 1));
    assertEquals(3, s.chunkLength(1, 0));
    assertEquals(2, s.chunkLength(1, 1));
    assertTrue(s.chunkLength(1, 2) <= 0, "no third chunk");
  }

  @Test
  void everyRoundBringsOneWholeSegment() {
    // 2 ranks, 10 floats, chunks of 3: each segment of 5 floats is 2 chunks; 2 rounds of 2.
    assertEquals(4, new RingSchedule(2, 10, 3).expectedChunks(0));
    // 3 ranks, 10 floats (segments 3, 3, 4), chunks of 4: 1 chunk each, 4 rounds.
    assertEquals(4, new RingSchedule(3, 10, 4).expectedChunks(2));
  }

  @Test
  void aRingOfOneReceivesNothing() {
    assertEquals(0, new RingSchedule(1, 10, 4).expectedChunks(0));
  }
}
