package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import kaon.actors.chaos.RuntimeFaults;
import kaon.runtime.chaos.Scenario.Fault;
import kaon.runtime.chaos.Scenario.FaultRule;
import kaon.runtime.chaos.Scenario.Span;
import kaon.runtime.chaos.Scenario.Target;
import kaon.runtime.chaos.Scenario.Trigger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScenarioFileTest {

  @TempDir
  Path dir;

  private Path write(String text) throws IOException {
    Path file = dir.resolve("scenario.yaml");
    Files.writeString(file, text);
    return file;
  }

  private List<String> mistakes(String text) throws IOException {
    Path file = write(text);
    ScenarioFile.InvalidScenarioException e = assertThrows(ScenarioFile.InvalidScenarioException.class,
        () -> ScenarioFile.read(file));
    return e.getMessage().lines().map(line -> line.replace(file + ":", "")).toList();
  }

  private static final String JOB = """
      name: kill loop
      job:
        task: fashion-mnist-mlp
        workers: 2
        epochs: 3
      """;

  @Test
  void readsAScenarioWithEachKindOfTrigger() throws Exception {
    Scenario s = ScenarioFile.read(write(JOB + """
        time-limit: 20m
        faults:
          - at: 30s
            kill: node 2
          - after-checkpoint: 2
            hang: any
            for: 2-10s
          - every: 20-40s
            from: 1m
            one-of:
              - stop: coordinator
                stay-down: true
              - cassandra-kill: 500ms-2s
        """));
    assertEquals("kill loop", s.name());
    assertEquals(3, s.nodes());
    assertEquals(2, s.job().getMinWorkers());
    assertEquals(2, s.job().getMaxWorkers());
    assertEquals(new Scenario.Expectation(true, "", 0.015), s.expect());
    Span five = new Span(Duration.ofSeconds(5), Duration.ofSeconds(5));
    assertEquals(List.of(
        new FaultRule(8, new Trigger.At(Duration.ofSeconds(30)), List.of(new Fault.Kill(new Target.Node(2), five))),
        new FaultRule(10, new Trigger.AfterCheckpoint(2),
            List.of(new Fault.Hang(new Target.Any(), new Span(Duration.ofSeconds(2), Duration.ofSeconds(10))))),
        new FaultRule(13, new Trigger.Every(new Span(Duration.ofSeconds(20), Duration.ofSeconds(40)), Duration.ofMinutes(1),
            Duration.ofMinutes(20)), List.of(new Fault.Stop(new Target.Coordinator(), null),
            new Fault.CassandraDown(true, new Span(Duration.ofMillis(500), Duration.ofSeconds(2)))))),
        s.faults());
  }

  @Test
  void aScenarioThatExpectsFailureSaysWhatTheFailureMentions() throws Exception {
    Scenario s = ScenarioFile.read(write(JOB + "expect: failed\nfailure-mentions: diverged\nfaults: []\n"));
    assertEquals(new Scenario.Expectation(false, "diverged", 0.015), s.expect());
    assertEquals(List.of("6: expect: a scenario that expects failure says which words the failure mentions"
        + " (failure-mentions)"), mistakes(JOB + "expect: failed\nfaults: []\n"));
  }

  @Test
  void everyMistakeIsReportedWithItsLineAndField() throws IOException {
    List<String> found = mistakes("""
        name: bad
        nodes: 0
        job:
          task: fashion-mnist-mlp
          epochz: 3
        expect: maybe
        faults:
          - at: 30 seconds
            kill: node 4
          - hang: any
          - every: 40-20s
            kill: any
            for: 3s
          - at: 1s
            one-of:
              - kill: any
                hang: any
        """);
    assertEquals(List.of(
        "2: nodes: expected a whole number from 1 to 64, got \"0\"",
        "5: epochz: unknown key; the keys are task, workers, min-workers, max-workers, epochs, global-batch, optimizer,"
            + " learning-rate, momentum, weight-decay, seed, max-steps, checkpoint-every-steps, model-output",
        "6: expect: expected succeeded or failed, got \"maybe\"",
        "8: at: expected a time such as 500ms, 30s, 5m or 1h, got \"30 seconds\"",
        "9: kill: expected node N (1 to 3), any or coordinator, got \"node 4\"",
        "10: faults: no trigger; say when: at: 30s, after-checkpoint: 2 or every: 20-40s",
        "10: hang: say how long the node hangs (for: 5s or for: 2-10s)",
        "11: every: the range runs backwards: \"40-20s\"",
        "13: for: only hang:, network faults and faults inside the runtime last for: a time (Cassandra faults give theirs"
            + " as their value)",
        "16: faults: more than one fault (kill, hang); give each its own entry, or use one-of:"), found);
  }

  @Test
  void unknownFieldsAndMissingPartsAreNamed() throws IOException {
    List<String> found = mistakes("""
        nam: typo
        faults:
          - at: 5s
            kil: node 1
        """);
    assertTrue(found.get(0).startsWith("1: nam: unknown field; the fields here are accuracy-tolerance, expect,"), found.get(0));
    assertTrue(found.contains("4: kil: unknown field; the fields here are after-checkpoint, at, bandwidth, cassandra-kill,"
        + " cassandra-stop, checkpoint-write-failure, chunk-corrupt, chunk-delay, chunk-drop, delay, every, for, from, hang,"
        + " jitter, kill, latency, one-of, one-way, packet-loss, partition, percent, poison-gradient, probability, rate,"
        + " restart, restart-after, slow-rank, stay-down, stop, strikes, until, value"), found.toString());
    assertTrue(found.contains("3: faults: no fault; give one of kill:, hang:, stop:, restart:, cassandra-stop:,"
        + " cassandra-kill:, partition:, packet-loss:, bandwidth:, latency:, chunk-drop:, chunk-delay:, chunk-corrupt:,"
        + " slow-rank:, poison-gradient:, checkpoint-write-failure:"), found.toString());
    assertTrue(found.contains("1: job: missing; give the job to run (task, workers, epochs, ...)"), found.toString());
    assertTrue(found.contains("1: name: missing; give the scenario a name for its report"), found.toString());
  }

  @Test
  void faultsInsideTheRuntimeAreReadAndTheirMistakesNamed() throws Exception {
    Scenario scenario = ScenarioFile.read(write(JOB + """
        faults:
          - after-checkpoint: 2
            chunk-corrupt: rank 1
            strikes: 1
          - at: 20s
            chunk-delay: any
            delay: 20ms
            probability: 0.1
            for: 5-10s
          - at: 40s
            poison-gradient: rank 0
            value: large
          - at: 50s
            checkpoint-write-failure: 5s
        """));
    assertEquals(List.of(
        new Scenario.Fault.Runtime(RuntimeFaults.Kind.CHUNK_CORRUPT, 1, 1, Duration.ZERO, 1,
            new Scenario.Span(Duration.ofSeconds(30), Duration.ofSeconds(30))),
        new Scenario.Fault.Runtime(RuntimeFaults.Kind.CHUNK_DELAY, -1, 0.1, Duration.ofMillis(20), 0,
            new Scenario.Span(Duration.ofSeconds(5), Duration.ofSeconds(10))),
        new Scenario.Fault.Runtime(RuntimeFaults.Kind.POISON_LARGE, 0, 1, Duration.ZERO, 0,
            new Scenario.Span(Duration.ofMinutes(2), Duration.ofMinutes(2))),
        new Scenario.Fault.Runtime(RuntimeFaults.Kind.CHECKPOINT_WRITE, -1, 1, Duration.ZERO, 0,
            new Scenario.Span(Duration.ofSeconds(5), Duration.ofSeconds(5)))),
        scenario.faults().stream().map(r -> r.oneOf().get(0)).toList());

    List<String> found = mistakes(JOB + """
        faults:
          - at: 1s
            chunk-delay: rank one
          - at: 2s
            slow-rank: rank 0
          - at: 3s
            poison-gradient: any
            value: inf
            strikes: 2
          - at: 4s
            kill: any
            probability: 0.5
          - at: 5s
            chunk-drop: rank 0
            delay: 1s
            probability: 2
        """);
    assertEquals(List.of(
        "8: chunk-delay: say how long (delay: 200ms)",
        "8: chunk-delay: expected rank N or any, got \"rank one\"",
        "10: slow-rank: say how long (delay: 200ms)",
        "13: value: expected nan or large",
        "14: strikes: a poison strikes once",
        "17: probability: only faults inside the runtime (chunk-*, slow-rank, poison-gradient) take probability:",
        "20: delay: only chunk-delay:, slow-rank: and latency: take a delay:",
        "21: probability: expected a number from 1.0E-6 to 1.0, got \"2\""), found);
  }

  @Test
  void networkFaultsAreReadAndTheirMistakesNamed() throws Exception {
    Scenario scenario = ScenarioFile.read(write(JOB + """
        faults:
          - at: 20s
            partition: coordinator
            one-way: true
            for: 10-20s
          - at: 40s
            packet-loss: not-coordinator
            percent: 2.5
          - at: 60s
            bandwidth: node 2
            rate: 20mbit
          - at: 80s
            latency: any
            delay: 30ms
            jitter: 10ms
        """));
    Span twenty = new Span(Duration.ofSeconds(20), Duration.ofSeconds(20));
    assertEquals(List.of(
        new Fault.Network(Scenario.NetworkKind.PARTITION, new Target.Coordinator(), true, 0, "", Duration.ZERO, Duration.ZERO,
            new Span(Duration.ofSeconds(10), Duration.ofSeconds(20))),
        new Fault.Network(Scenario.NetworkKind.LOSS, new Target.NotCoordinator(), false, 2.5, "", Duration.ZERO, Duration.ZERO,
            twenty),
        new Fault.Network(Scenario.NetworkKind.BANDWIDTH, new Target.Node(2), false, 0, "20mbit", Duration.ZERO, Duration.ZERO,
            twenty),
        new Fault.Network(Scenario.NetworkKind.DELAY, new Target.Any(), false, 0, "", Duration.ofMillis(30),
            Duration.ofMillis(10), twenty)),
        scenario.faults().stream().map(r -> r.oneOf().get(0)).toList());

    List<String> found = mistakes(JOB + """
        faults:
          - at: 1s
            packet-loss: node 9
          - at: 2s
            bandwidth: any
            rate: fast
          - at: 3s
            partition: any
            percent: 5
          - at: 4s
            kill: not-coordinator
            one-way: true
        """);
    assertEquals(List.of(
        "8: packet-loss: say how many packets are lost (percent: 5)",
        "8: packet-loss: expected node N (1 to 3), any, coordinator or not-coordinator, got \"node 9\"",
        "11: rate: expected a rate such as 500kbit, 10mbit or 1gbit, got \"fast\"",
        "14: percent: belongs to packet-loss:, not partition:",
        "17: one-way: only network faults (partition, packet-loss, bandwidth, latency) take one-way:",
        "16: kill: expected node N (1 to 3), any or coordinator, got \"not-coordinator\""), found);
  }

  @Test
  void invalidYamlIsNamedAtItsLine() throws IOException {
    List<String> found = mistakes("name: x\nfaults:\n  - at: [1s\n");
    assertEquals(1, found.size());
    assertTrue(found.get(0).matches("[34]: not valid YAML: .*"), found.get(0));
  }

  @Test
  void aSpanDrawsWithinItsBoundsAndAFixedOneIsExact() {
    Span range = new Span(Duration.ofSeconds(2), Duration.ofSeconds(10));
    Random random = new Random(1);
    for (int k = 0; k < 1000; k++) {
      Duration d = range.draw(random);
      assertTrue(d.compareTo(Duration.ofSeconds(2)) >= 0 && d.compareTo(Duration.ofSeconds(10)) <= 0, d.toString());
    }
    assertEquals(Duration.ofSeconds(5), new Span(Duration.ofSeconds(5), Duration.ofSeconds(5)).draw(random));
  }
}
