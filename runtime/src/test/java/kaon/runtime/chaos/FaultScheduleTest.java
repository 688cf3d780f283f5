package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import kaon.runtime.chaos.FaultSchedule.Firing;
import kaon.runtime.chaos.Scenario.Fault;
import kaon.runtime.chaos.Scenario.FaultRule;
import kaon.runtime.chaos.Scenario.Span;
import kaon.runtime.chaos.Scenario.Target;
import kaon.runtime.chaos.Scenario.Trigger;
import org.junit.jupiter.api.Test;

class FaultScheduleTest {

  private static final Fault KILL = new Fault.Kill(new Target.Any(), null);
  private static final Fault HANG = new Fault.Hang(new Target.Node(2), new Span(Duration.ofSeconds(1), Duration.ofSeconds(3)));
  private static final Fault OUTAGE = new Fault.CassandraDown(false, new Span(Duration.ofSeconds(5), Duration.ofSeconds(5)));

  private static Duration s(long seconds) {
    return Duration.ofSeconds(seconds);
  }

  /** Steps through time a second at a time with the given checkpoints per second; the firings with their second. */
  private static List<String> play(FaultSchedule schedule, int seconds, int checkpointsPerSecond) {
    List<String> fired = new ArrayList<>();
    for (int t = 0; t <= seconds; t++) {
      for (Firing f : schedule.due(s(t), t * checkpointsPerSecond)) {
        fired.add(t + "s line " + f.rule().line() + " " + FaultInjector.describe(f.fault()) + " #" + f.count());
      }
    }
    return fired;
  }

  @Test
  void atFiresOnceWhenItsTimeCame() {
    FaultSchedule schedule = new FaultSchedule(List.of(new FaultRule(3, new Trigger.At(s(30)), List.of(KILL))), new Random(1), false);
    assertEquals(List.of("30s line 3 kill #1"), play(schedule, 100, 0));
    assertTrue(schedule.over());
    assertTrue(schedule.neverFired().isEmpty());
  }

  @Test
  void afterCheckpointFiresOnceAtItsCountAndWaitsForIt() {
    FaultSchedule schedule = new FaultSchedule(List.of(new FaultRule(5, new Trigger.AfterCheckpoint(4), List.of(HANG))),
        new Random(1), false);
    assertTrue(schedule.due(s(500), 3).isEmpty(), "three checkpoints are not four, however long it took");
    assertTrue(schedule.timeOver(), "only a checkpoint count can fire it now");
    assertFalse(schedule.over());
    assertEquals(1, schedule.due(s(501), 4).size());
    assertTrue(schedule.due(s(502), 9).isEmpty());
    assertTrue(schedule.over());
  }

  @Test
  void everyFiresWithinItsWindowAtDrawnIntervals() {
    FaultRule rule = new FaultRule(7, new Trigger.Every(new Span(s(20), s(40)), s(10), s(200)), List.of(KILL));
    FaultSchedule schedule = new FaultSchedule(List.of(rule), new Random(42), false);
    List<Integer> times = play(schedule, 400, 0).stream().map(f -> Integer.parseInt(f.substring(0, f.indexOf('s')))).toList();
    assertTrue(times.size() >= 4 && times.size() <= 10, times.toString());
    assertTrue(times.get(0) >= 30 && times.get(0) <= 50, "the first after from + an interval: " + times);
    for (int k = 1; k < times.size(); k++) {
      int gap = times.get(k) - times.get(k - 1);
      assertTrue(gap >= 20 && gap <= 41, "gap " + gap + " in " + times);
    }
    assertTrue(times.get(times.size() - 1) <= 200, "none after until: " + times);
    assertTrue(schedule.over());
  }

  @Test
  void withGapsTheNextIntervalStartsWhenTheFaultIsOver() {
    FaultRule rule = new FaultRule(2, new Trigger.Every(new Span(s(20), s(20)), s(0), s(1000)), List.of(OUTAGE));
    FaultSchedule schedule = new FaultSchedule(List.of(rule), new Random(1), true);
    assertEquals(1, schedule.due(s(20), 0).size());
    // The outage (and Cassandra's start) lasts 45 s: nothing fires meanwhile, however long it is.
    for (int t = 21; t < 65; t++) {
      assertTrue(schedule.due(s(t), 0).isEmpty(), "fired at " + t + " s while the fault was under way");
    }
    assertFalse(schedule.over(), "the rule waits for its fault to be over, it is not done");
    schedule.faultsOver(s(65));
    assertTrue(schedule.due(s(84), 0).isEmpty());
    assertEquals(1, schedule.due(s(85), 0).size(), "20 s of quiet after the fault was over");
  }

  @Test
  void withGapsRulesDueTogetherFireOneAtATimeInTheirOrder() {
    FaultRule kill = new FaultRule(3, new Trigger.AfterCheckpoint(2), List.of(KILL));
    FaultRule hang = new FaultRule(6, new Trigger.AfterCheckpoint(4), List.of(HANG));
    FaultSchedule schedule = new FaultSchedule(List.of(kill, hang), new Random(1), true);
    // Both are due at once (the count jumped while an earlier fault was under way).
    List<Firing> first = schedule.due(s(30), 5);
    assertEquals(List.of(3), first.stream().map(f -> f.rule().line()).toList());
    List<Firing> second = schedule.due(s(31), 5);
    assertEquals(List.of(6), second.stream().map(f -> f.rule().line()).toList(), "the other stayed due");
    assertTrue(schedule.over());
    FaultSchedule overlapping = new FaultSchedule(List.of(kill, hang), new Random(1), false);
    assertEquals(2, overlapping.due(s(30), 5).size(), "with overlap they strike together");
  }

  @Test
  void theSameSeedGivesTheSameFaultsAnotherSeedOthers() {
    List<FaultRule> rules = List.of(
        new FaultRule(1, new Trigger.Every(new Span(s(5), s(15)), s(0), s(300)), List.of(KILL, HANG, OUTAGE)),
        new FaultRule(2, new Trigger.AfterCheckpoint(3), List.of(KILL, OUTAGE)));
    List<String> first = play(new FaultSchedule(rules, new Random(7), false), 300, 1);
    assertEquals(first, play(new FaultSchedule(rules, new Random(7), false), 300, 1));
    List<String> other = play(new FaultSchedule(rules, new Random(8), false), 300, 1);
    assertFalse(first.equals(other), "seed 8 drew exactly what seed 7 did: " + first);
    assertTrue(first.stream().anyMatch(f -> f.contains("hang")) && first.stream().anyMatch(f -> f.contains("cassandra")),
        "one-of draws among all its faults: " + first);
  }

  @Test
  void aRuleWhoseTriggerNeverCameIsReported() {
    FaultRule late = new FaultRule(9, new Trigger.AfterCheckpoint(50), List.of(KILL));
    FaultRule soon = new FaultRule(4, new Trigger.At(s(1)), List.of(KILL));
    FaultSchedule schedule = new FaultSchedule(List.of(soon, late), new Random(1), false);
    play(schedule, 60, 0);
    assertEquals(List.of(late), schedule.neverFired());
  }

  @Test
  void everyScenarioShippedInDeployChaosIsValid() throws Exception {
    Path dir = Path.of("..", "deploy", "chaos");
    int count = 0;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.yaml")) {
      for (Path file : files) {
        Scenario scenario = ScenarioFile.read(file); // throws, naming file and line, on a mistake
        assertFalse(scenario.faults().isEmpty(), file + " has no faults");
        count++;
      }
    } catch (IOException e) {
      throw new AssertionError("cannot list " + dir.toAbsolutePath(), e);
    }
    assertTrue(count >= 6, "scenarios in deploy/chaos: " + count);
  }
}
