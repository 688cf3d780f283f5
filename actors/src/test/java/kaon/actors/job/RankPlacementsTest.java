package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import kaon.actors.worker.WorkerReport;
import org.junit.jupiter.api.Test;

class RankPlacementsTest {

  private static final String A = "pekko://kaon@10.0.0.1:25520";
  private static final String B = "pekko://kaon@10.0.0.2:25520";

  @Test
  void ranksAreListedInRankOrderWithTheirWorkersMemberIds() {
    RankPlacements placements = new RankPlacements();
    placements.placed(new WorkerReport.Placed(2, 1, B, "cpu:0", "artery", "setting", null));
    placements.placed(new WorkerReport.Placed(2, 0, A, "cpu:1", "", "", null));
    assertEquals(List.of(new RankPlacement(0, 4, A, "cpu:1", "", ""), new RankPlacement(1, 7, B, "cpu:0", "artery", "setting")),
        placements.of(2, List.of(4, 7)));
  }

  @Test
  void aRanksNewestWordCounts() {
    RankPlacements placements = new RankPlacements();
    assertTrue(placements.placed(new WorkerReport.Placed(1, 0, A, "cpu:0", "connecting", "while a link is set up", null)));
    assertTrue(placements.placed(new WorkerReport.Placed(1, 0, A, "cpu:0", "link", "a tensor link", null)));
    assertFalse(placements.placed(new WorkerReport.Placed(1, 0, A, "cpu:0", "link", "a tensor link", null)), "said again");
    assertEquals(List.of(new RankPlacement(0, 0, A, "cpu:0", "link", "a tensor link")), placements.of(1, List.of(0)));
  }

  @Test
  void aNewerGenerationReplacesWhatWasKnown() {
    RankPlacements placements = new RankPlacements();
    placements.placed(new WorkerReport.Placed(1, 0, A, "cpu:0", "artery", "", null));
    placements.placed(new WorkerReport.Placed(1, 1, B, "cpu:0", "artery", "", null));
    placements.placed(new WorkerReport.Placed(2, 0, B, "cpu:0", "", "", null));
    assertEquals(List.of(new RankPlacement(0, 1, B, "cpu:0", "", "")), placements.of(2, List.of(1)));
  }

  @Test
  void aLateReportOfAnOlderGenerationIsIgnored() {
    RankPlacements placements = new RankPlacements();
    placements.placed(new WorkerReport.Placed(3, 0, A, "cpu:0", "", "", null));
    assertFalse(placements.placed(new WorkerReport.Placed(2, 1, B, "cpu:0", "artery", "", null)));
    assertEquals(List.of(new RankPlacement(0, 0, A, "cpu:0", "", "")), placements.of(3, List.of(0, 1)));
  }

  @Test
  void whatIsKnownOfAnotherGenerationIsNotShown() {
    RankPlacements placements = new RankPlacements();
    placements.placed(new WorkerReport.Placed(1, 0, A, "cpu:0", "artery", "", null));
    assertEquals(List.of(), placements.of(2, List.of(0)), "generation 2 was formed; its ranks have not said yet");
  }
}
