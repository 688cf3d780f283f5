package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import kaon.actors.checkpoint.CheckpointInfo;
import org.junit.jupiter.api.Test;

/** Who forms the next generation and where its state comes from: one rule per test, literal inputs. */
class GenerationPlannerTest {

  private static final CheckpointInfo CHECKPOINT = new CheckpointInfo("step-400-ab", 400, 0, 1000, "cd");

  private static GenerationPlanner.Plan plan(GenerationPlanner.Survey survey, int min, int max, Optional<CheckpointInfo> checkpoint) {
    return GenerationPlanner.plan(survey, min, max, checkpoint, member -> "job-worker-" + member);
  }

  private static GenerationPlanner.Form form(GenerationPlanner.Plan plan) {
    assertTrue(plan instanceof GenerationPlanner.Form, plan.toString());
    return (GenerationPlanner.Form) plan;
  }

  private static GenerationPlanner.Held step(long step) {
    return new GenerationPlanner.Held(step, 4096);
  }

  @Test
  void aGenerationHasOneRankPerDeviceUpToTheMaximum() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 5, Set.of(0, 1), Map.of());
    assertEquals(List.of(0, 1, 2, 3), form(plan(survey, 1, 4, Optional.empty())).members());
  }

  @Test
  void belowTheMinimumTheJobWaitsAndSaysHowManyDevicesThereAre() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 1, Set.of(0), Map.of(0, step(300)));
    GenerationPlanner.Plan plan = plan(survey, 2, 4, Optional.empty());
    assertEquals(new GenerationPlanner.Wait("waiting for devices: 1 available, needs at least 2"), plan);
  }

  @Test
  void aFailedCensusCountsAsNoDevices() {
    var survey = new GenerationPlanner.Survey(List.of(0), 1, 0, Set.of(), Map.of(0, step(300)));
    assertTrue(plan(survey, 1, 1, Optional.empty()) instanceof GenerationPlanner.Wait);
  }

  @Test
  void theStateIsTheNewestAnyMemberHoldsAndThatMemberSendsIt() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1, 2), 3, 3, Set.of(0, 1, 2),
        Map.of(0, step(200), 1, new GenerationPlanner.Held(300, 777), 2, step(-1)));
    GenerationPlanner.Form form = form(plan(survey, 1, 3, Optional.of(CHECKPOINT)));
    assertEquals(300, form.resumeStep());
    assertEquals(new StateSource.Memory("job-worker-1"), form.source());
    assertEquals(0, form.sourceRank(), "the holder comes first, so it is rank 0");
    assertEquals(777, form.sourceBytes());
  }

  @Test
  void membersHoldingTheNewestStateComeFirstSoASmallerGenerationKeepsThem() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1, 2), 3, 2, Set.of(0, 1, 2),
        Map.of(0, step(100), 1, step(-1), 2, step(300)));
    assertEquals(List.of(2, 0), form(plan(survey, 1, 3, Optional.empty())).members());
  }

  @Test
  void aMemberWhoseDeviceIsGoneLeavesAndANewMemberIdTakesItsPlace() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 2, Set.of(0), Map.of(0, step(300)));
    assertEquals(List.of(0, 2), form(plan(survey, 1, 2, Optional.empty())).members());
  }

  @Test
  void aMemberThatOwnsADeviceButDidNotAnswerIsSlowNotGoneAndStays() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 2, Set.of(0, 1), Map.of(0, step(300)));
    GenerationPlanner.Form form = form(plan(survey, 1, 2, Optional.empty()));
    assertEquals(List.of(0, 1), form.members());
    assertEquals(new StateSource.Memory("job-worker-0"), form.source(), "the slow one receives the state");
  }

  @Test
  void newMembersTakeIdsNeverUsedBefore() {
    var survey = new GenerationPlanner.Survey(List.of(3), 7, 3, Set.of(3), Map.of(3, step(50)));
    assertEquals(List.of(3, 7, 8), form(plan(survey, 1, 3, Optional.empty())).members());
  }

  @Test
  void orphansHoldingDevicesAreTakenBeforeNewIdsAndTheirStateIsNeverUsed() {
    // Generation 2 (formed on the far side of a partition) has member 2, cut off and gone; workers
    // 0 and 1 of generation 1 still hold their devices: nobody could tell them to give them back.
    var survey = new GenerationPlanner.Survey(List.of(2), 3, 2, Set.of(), Map.of(), List.of(0, 1));
    GenerationPlanner.Form form = form(plan(survey, 1, 3, Optional.of(CHECKPOINT)));
    assertEquals(List.of(0, 1), form.members(), "no new ids: those would find every device taken");
    assertEquals(new StateSource.Checkpoint("step-400-ab"), form.source(), "an orphan's memory is older than that");
    // A member with state still comes first; orphans fill up before new ids.
    var mixed = new GenerationPlanner.Survey(List.of(4), 6, 3, Set.of(4), Map.of(4, step(700)), List.of(1));
    assertEquals(List.of(4, 1, 6), form(plan(mixed, 1, 3, Optional.empty())).members());
  }

  @Test
  void orphansAreTheJobsDeviceOwnersThatAreNotMembers() {
    assertEquals(List.of(0, 7), GenerationSurvey.orphans("job", Set.of("job-worker-7", "job-worker-2", "job-worker-0",
        "other-worker-1", "job-worker-3-x"), List.of(2)));
  }

  @Test
  void withoutStateInMemoryTheGenerationResumesFromTheCheckpoint() {
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 2, Set.of(0, 1), Map.of(0, step(-1), 1, step(-1)));
    GenerationPlanner.Form form = form(plan(survey, 1, 2, Optional.of(CHECKPOINT)));
    assertEquals(400, form.resumeStep());
    assertEquals(new StateSource.Checkpoint("step-400-ab"), form.source());
    assertEquals(-1, form.sourceRank());
  }

  @Test
  void withoutStateOrCheckpointTheGenerationStartsFromTheInitialParameters() {
    var survey = new GenerationPlanner.Survey(List.of(0), 1, 1, Set.of(0), Map.of());
    GenerationPlanner.Form form = form(plan(survey, 1, 1, Optional.empty()));
    assertEquals(0, form.resumeStep());
    assertEquals(StateSource.INIT, form.source());
  }

  @Test
  void stateAtStepZeroIsNoStateAndAsksForACheckpoint() {
    var survey = new GenerationPlanner.Survey(List.of(0), 1, 1, Set.of(0), Map.of(0, step(0)));
    assertTrue(survey.needsCheckpoint());
    assertEquals(StateSource.INIT, form(plan(survey, 1, 1, Optional.empty())).source());
  }

  @Test
  void stateHeldByAMemberThatGaveItsDeviceBackDoesNotCount() {
    // It answered with step 300, then its device went (the state goes with it).
    var survey = new GenerationPlanner.Survey(List.of(0, 1), 2, 2, Set.of(1), Map.of(0, step(300), 1, step(-1)));
    assertTrue(survey.needsCheckpoint());
    GenerationPlanner.Form form = form(plan(survey, 1, 2, Optional.of(CHECKPOINT)));
    assertEquals(new StateSource.Checkpoint("step-400-ab"), form.source());
    assertEquals(List.of(1, 2), form.members());
  }

  @Test
  void aMemberHoldingStateNeedsNoCheckpoint() {
    var survey = new GenerationPlanner.Survey(List.of(0), 1, 1, Set.of(0), Map.of(0, step(1)));
    assertFalse(survey.needsCheckpoint());
  }

  private static EpochMetrics epoch(int epoch) {
    return new EpochMetrics(epoch, 0.5, 0.8, 0.8, 40_000, 1.5, 2, 468L * epoch, 59_904, true);
  }

  @Test
  void noStateMayPassTheEndOfTheFirstEpochWithoutAResult() {
    java.util.function.IntPredicate none = e -> false;
    assertEquals(Long.MAX_VALUE, GenerationPlanner.reportableThrough(List.of(), none, 8), "no epoch: its length is not known");
    assertEquals(1404, GenerationPlanner.reportableThrough(List.of(epoch(1), epoch(2)), none, 8));
    assertEquals(1404, GenerationPlanner.reportableThrough(List.of(epoch(2), epoch(1), epoch(4)), none, 8), "in any order");
    assertEquals(1872, GenerationPlanner.reportableThrough(List.of(epoch(1), epoch(2)), e -> e == 3, 8),
        "an epoch waiting for the journal has its result");
    assertEquals(Long.MAX_VALUE, GenerationPlanner.reportableThrough(List.of(epoch(1), epoch(2)), none, 2));
  }

  @Test
  void membersPastAnEpochWhoseResultWasLostResumeFromACheckpointBeforeItsEnd() {
    // Epoch 3 (steps 937..1404) lost its result with a rank; the survivors are at step 1494.
    var survey = new GenerationPlanner.Survey(List.of(1, 2), 3, 2, Set.of(2), Map.of(2, step(1494)));
    CheckpointInfo before = new CheckpointInfo("step-1400-ab", 1400, 2, 1000, "cd");
    GenerationPlanner.Form form = form(GenerationPlanner.plan(survey, 1, 2, Optional.of(before), m -> "w" + m, 1404));
    assertEquals(1400, form.resumeStep());
    assertEquals(new StateSource.Checkpoint("step-1400-ab"), form.source());
    assertEquals(-1, form.sourceRank());
    // Without a checkpoint before that end the survivors go on from memory, as before.
    CheckpointInfo after = new CheckpointInfo("step-1500-ab", 1500, 3, 1000, "cd");
    assertEquals(new StateSource.Memory("w2"),
        form(GenerationPlanner.plan(survey, 1, 2, Optional.of(after), m -> "w" + m, 1404)).source());
    assertEquals(new StateSource.Memory("w2"),
        form(GenerationPlanner.plan(survey, 1, 2, Optional.empty(), m -> "w" + m, 1404)).source());
    // Members inside the epoch are not past it: their memory is used.
    var inside = new GenerationPlanner.Survey(List.of(1, 2), 3, 2, Set.of(2), Map.of(2, step(1300)));
    assertEquals(1300, form(GenerationPlanner.plan(inside, 1, 2, Optional.of(before), m -> "w" + m, 1404)).resumeStep());
  }
}
