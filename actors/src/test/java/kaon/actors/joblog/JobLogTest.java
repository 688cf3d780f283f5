package kaon.actors.joblog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

class JobLogTest {

  @Test
  void aLineIsTheJobsItsContextOrItsWordsName() {
    assertEquals("j-1", JobLog.jobOf("j-1", "training run failed"));
    assertEquals("j-1", JobLog.jobOf(null, "job j-1: generation 2 of 1 ranks resumes at step 40"));
    assertEquals("j.2", JobLog.jobOf(null, "job j.2 ended: SUCCEEDED"));
    assertEquals("j-3", JobLog.jobOf("", "j-3-worker-1: stopping generation 2 (rank lost)"));
    assertNull(JobLog.jobOf(null, "device cpu:0 now owned by j-1-worker-0"));
    assertNull(JobLog.jobOf(null, "jobs everywhere"));
    assertNull(JobLog.jobOf(null, null));
  }

  @Test
  void aReaderGetsOnlyTheLinesAfterTheLastItSawAndEachJobKeepsItsNewest() {
    JobLog log = new JobLog(2, 3);
    log.add("a", 1, "INFO", "X", "one");
    log.add("b", 2, "INFO", "X", "other job");
    log.add("a", 3, "WARN", "X", "two");
    List<JobLog.Line> all = log.after("a", 0);
    assertEquals(List.of("one", "two"), all.stream().map(JobLog.Line::message).toList());
    assertEquals(List.of("two"), log.after("a", all.get(0).number()).stream().map(JobLog.Line::message).toList());
    assertEquals(List.of(), log.after("a", all.get(1).number()));

    log.add("a", 4, "INFO", "X", "three");
    log.add("a", 5, "INFO", "X", "four");
    assertEquals(List.of("two", "three", "four"), log.after("a", 0).stream().map(JobLog.Line::message).toList());
    // A third job pushes out the one logged to least recently.
    log.add("c", 6, "INFO", "X", "new job");
    assertEquals(List.of(), log.after("b", 0));
    assertEquals(3, log.after("a", 0).size());
    assertEquals(List.of(), log.after("never", 0));
  }
}
