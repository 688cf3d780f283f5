package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Verdict.FaultTiming;
import org.junit.jupiter.api.Test;

class ChaosReportTest {

  private static FaultTiming timing(int fault, String kind, long detect, long resume) {
    return new FaultTiming(fault, kind, "node 1", "j", "effect", detect, resume, 0);
  }

  @Test
  void percentilesAreNearestRank() {
    List<Long> sorted = List.of(1000L, 2000L, 3000L, 4000L);
    assertEquals(2000, ChaosReport.percentile(sorted, 0.50));
    assertEquals(4000, ChaosReport.percentile(sorted, 0.99));
    assertTrue(Double.isNaN(ChaosReport.percentile(List.of(), 0.5)));
  }

  @Test
  void resumeTimesAreGroupedByKindOverTheFaultsThatResumed() {
    List<ChaosReport.ResumeTimes> times = ChaosReport.resumeTimes(List.of(timing(1, "kill", 100, 4000),
        timing(2, "hang", -1, 1000), timing(3, "kill", 200, 6000), timing(4, "kill", 300, -1)));
    assertEquals(new ChaosReport.ResumeTimes("kill", 3, 2, 4.0, 6.0), times.get(0));
    assertEquals(new ChaosReport.ResumeTimes("hang", 1, 1, 1.0, 1.0), times.get(1));
  }

  @Test
  void effectiveTrainingTimeLeavesOutTheOverlappingSpansFaultsCost() {
    // 100 s of wall time; fault 1 costs 10..30 s, fault 2 (noticed) 20..40 s: 30 s lost together.
    // Fault 3 was not noticed (no detection), so its span costs nothing.
    List<Observation> history = List.of(new JobSubmitted(0, "j", 1, 0, 128, 1, 1, false, ""),
        new FaultStarted(10_000, 1, "kill", "node 1", ""), new FaultStarted(20_000, 2, "kill", "node 2", ""),
        new FaultStarted(60_000, 3, "hang", "node 3", ""), new JobEnded(100_000, "j", "SUCCEEDED", "", 1, 0.8, "d"));
    List<FaultTiming> timings = List.of(timing(1, "kill", 500, 20_000), timing(2, "kill", 500, 20_000),
        timing(3, "hang", -1, 2_000));
    assertEquals(0.70, ChaosReport.effectiveTrainingRatio(history, timings), 1e-9);
  }

  @Test
  void aStallAfterTheFaultResumedCountsAsLostTooButTheStartDoesNot() {
    // 100 s; the fault costs 10..20 s; later the job stands at step 500 from 50 s to 70 s (a
    // re-formation failing again and again): 30 s lost. Its first step came 8 s after submission:
    // starting is not a stall.
    List<Observation> history = List.of(new JobSubmitted(0, "j", 1, 0, 128, 1, 1, false, ""),
        steps(8_000, 10), steps(10_000, 20), new FaultStarted(10_000, 1, "kill", "node 1", ""), steps(20_000, 30),
        steps(25_000, 100), steps(30_000, 200), steps(35_000, 300), steps(40_000, 400), steps(45_000, 450),
        steps(50_000, 500), steps(55_000, 500), steps(60_000, 500), steps(70_000, 520), steps(71_000, 540),
        new JobEnded(100_000, "j", "SUCCEEDED", "", 1, 0.8, "d"));
    assertEquals(0.70, ChaosReport.effectiveTrainingRatio(history, List.of(timing(1, "kill", 500, 10_000))), 1e-9);
  }

  private static Observation.StepsSeen steps(long at, long step) {
    return new Observation.StepsSeen(at, "j", 1, step, 100, 1, 1.0, "");
  }

  @Test
  void theReportShowsEachInvariantAndEachFault() {
    Verdict verdict = new Verdict(List.of(new Verdict.Finding(Invariant.OUTCOME, true, List.of("job j succeeded")),
        new Verdict.Finding(Invariant.FENCING, false, List.of("writer a | b"))), List.of(timing(1, "kill", 500, 2500)));
    String md = ChaosReport.markdown("Run", List.of(), verdict, List.of());
    assertTrue(md.contains("**1 invariant(s) broken.**"), md);
    assertTrue(md.contains("| fencing: ") && md.contains("| **NO** | writer a \\| b |"), md);
    assertTrue(md.contains("| 1 | kill | node 1 | j | effect | 0.5 | 2.5 | 0 |"), md);
  }
}
