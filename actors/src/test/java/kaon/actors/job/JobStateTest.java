package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import org.junit.jupiter.api.Test;

/** What each event does to a job, in each of its phases: one rule per test. */
class JobStateTest {

  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 3, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 0, "", 10);

  private static JobState replay(JobEvent... events) {
    JobState state = new JobState.Unsubmitted();
    for (JobEvent e : events) {
      state = state.apply(e);
    }
    return state;
  }

  private static JobEvent.GenerationStarted generation(long g, long resumeStep, List<Integer> members) {
    return generation(g, resumeStep, members, 0);
  }

  private static JobEvent.GenerationStarted generation(long g, long resumeStep, List<Integer> members, long atMillis) {
    return new JobEvent.GenerationStarted(g, members.size(), resumeStep, "test", StateSource.INIT, members, atMillis);
  }

  private static List<Long> times(JobStatus s) {
    return List.of(s.createdAtMillis(), s.startedAtMillis(), s.endedAtMillis());
  }

  private static JobEvent.EpochCompleted epoch(int epoch, long stepsDone) {
    return new JobEvent.EpochCompleted(new EpochMetrics(epoch, 0.5, 0.8, 0.8, 100, 1, 2, stepsDone, 1000, true), stepsDone);
  }

  private static JobEvent.CheckpointCommitted checkpoint(long step) {
    return new JobEvent.CheckpointCommitted(new CheckpointInfo("step-" + step, step, 0, 100, "ab"));
  }

  @Test
  void aJournalStartsWithTheSubmission() {
    assertThrows(IllegalStateException.class, () -> replay(epoch(1, 10)));
  }

  @Test
  void aSubmittedJobStartsAndRunsOnceItRecordsAResult() {
    JobState started = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)));
    assertEquals(JobStatus.Phase.STARTING, started.phase());
    assertEquals(JobStatus.Phase.RUNNING, started.apply(checkpoint(10)).phase());
  }

  @Test
  void epochsFinishedAfterANewGenerationsResumePointAreTrainedAgainAndForgotten() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)), epoch(1, 10), epoch(2, 20),
        generation(2, 15, List.of(0, 1)));
    assertEquals(List.of(1), JobState.courseOf(state).epochs().stream().map(EpochMetrics::epoch).toList());
    assertEquals(15, JobState.courseOf(state).stepsDone());
  }

  @Test
  void epochsRecordedOutOfOrderAreKeptInOrderAndStepsDoneNeverGoesBack() {
    // After a journal outage the coordinator heard epoch 3 first, then the resent 1 and 2.
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)), epoch(3, 30), epoch(1, 10),
        epoch(2, 20));
    assertEquals(List.of(1, 2, 3), JobState.courseOf(state).epochs().stream().map(EpochMetrics::epoch).toList());
    assertEquals(30, JobState.courseOf(state).stepsDone());
  }

  @Test
  void newMemberIdsAreNeverReused() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)), generation(2, 0, List.of(0)));
    assertEquals(2, JobState.courseOf(state).nextMember());
  }

  @Test
  void theJournalRemembersTheNewestCheckpointsWhateverTheStoreKeeps() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)));
    for (long step = 1; step <= 40; step++) {
      state = state.apply(checkpoint(step));
    }
    List<CheckpointInfo> remembered = JobState.courseOf(state).checkpoints();
    assertEquals(JobState.CHECKPOINTS_REMEMBERED, remembered.size());
    assertEquals(40, remembered.get(remembered.size() - 1).step());
    assertEquals(List.of(40L, 39L, 38L), JobState.courseOf(state).newestCheckpoints(3).stream().map(CheckpointInfo::step).toList());
  }

  @Test
  void anEndedJobStaysEndedEvenIfAGenerationWasRecordedInTheSameWrite() {
    JobState ended = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)), new JobEvent.JobFailed("boom", 5),
        generation(2, 0, List.of(0, 1)), checkpoint(20));
    assertEquals(JobStatus.Phase.FAILED, ended.phase());
    assertEquals(1, JobState.courseOf(ended).generation());
    assertEquals(20, JobState.courseOf(ended).latestCheckpoint().step(), "results recorded with the end still count");
  }

  @Test
  void aJobWasCreatedWhenSubmittedAndStartedWhenItsFirstGenerationFormed() {
    JobState submitted = replay(new JobEvent.JobSubmitted(SPEC, 1000));
    assertEquals(List.of(1000L, 0L, 0L), times(submitted.toStatus("j", "", "")));
    JobState started = submitted.apply(generation(1, 0, List.of(0, 1), 1000));
    assertEquals(List.of(1000L, 1000L, 0L), times(started.toStatus("j", "", "")));
  }

  @Test
  void laterGenerationsDoNotStartTheJobAgain() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1000), generation(1, 0, List.of(0, 1), 1000),
        generation(2, 0, List.of(0), 5000));
    assertEquals(1000, JobState.courseOf(state).startedAtMillis());
  }

  @Test
  void aFirstGenerationWrittenWithoutItsTimeLeavesTheStartUnknown() {
    // Older journals: GenerationStarted had no time; a later generation's is not the start.
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1000), generation(1, 0, List.of(0, 1), 0),
        generation(2, 0, List.of(0), 5000));
    assertEquals(0, JobState.courseOf(state).startedAtMillis());
  }

  @Test
  void eachEndSaysWhenTheJobEnded() {
    JobState running = replay(new JobEvent.JobSubmitted(SPEC, 1000), generation(1, 0, List.of(0, 1), 1000), epoch(1, 10));
    assertEquals(List.of(1000L, 1000L, 9000L), times(running.apply(new JobEvent.JobSucceeded(0.9, "ab", 9000)).toStatus("j", "", "")));
    assertEquals(List.of(1000L, 1000L, 8000L), times(running.apply(new JobEvent.JobFailed("boom", 8000)).toStatus("j", "", "")));
    assertEquals(List.of(1000L, 1000L, 7000L), times(running.apply(new JobEvent.JobCancelled(7000)).toStatus("j", "", "")));
    // An end written before ends said when: the job ended, nobody knows when.
    assertEquals(0, running.apply(new JobEvent.JobCancelled(0)).toStatus("j", "", "").endedAtMillis());
  }

  @Test
  void resultsRecordedWithTheEndKeepItsTime() {
    JobState ended = replay(new JobEvent.JobSubmitted(SPEC, 1000), generation(1, 0, List.of(0, 1), 1000),
        new JobEvent.JobSucceeded(0.9, "ab", 9000), epoch(1, 10), checkpoint(10));
    assertEquals(9000, ((JobState.Ended) ended).endedAtMillis());
  }

  @Test
  void scalingChangesTheBoundsAndTheSizeTheNextGenerationGets() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1), generation(1, 0, List.of(0, 1)), new JobEvent.JobScaled(3, 3));
    assertEquals(3, ((JobState.Active) state).targetWorldSize());
    assertTrue(((JobState.Active) state).scaleProblem(0, 2).startsWith("min_workers:"));
    assertTrue(((JobState.Active) state).scaleProblem(1, 200).startsWith("max_workers:"));
  }

  @Test
  void theHistoryKeepsTheNewestHundredGenerations() {
    JobState state = replay(new JobEvent.JobSubmitted(SPEC, 1));
    for (long g = 1; g <= 120; g++) {
      state = state.apply(generation(g, 0, List.of(0)));
    }
    List<GenerationInfo> history = JobState.courseOf(state).history();
    assertEquals(JobState.HISTORY, history.size());
    assertEquals(21, history.get(0).generation());
  }
}
