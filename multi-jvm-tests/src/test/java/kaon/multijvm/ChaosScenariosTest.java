package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import kaon.runtime.chaos.HistoryFile;
import kaon.runtime.chaos.Observation;
import org.junit.jupiter.api.Test;

/**
 * {@code kaon chaos run} as a user runs it, with two of the shipped scenarios on one local cluster
 * of its own (three node JVMs and a Cassandra, all separate processes): the coordinator's node
 * SIGKILLed twice, then Cassandra stopped and SIGKILLed while the job checkpoints. The tool's exit
 * code is its verdict; the histories it wrote must show that the faults really struck: the
 * coordinator moved to another node each time (a new writer of its journal), the survivors' memory
 * was enough to go on, and the job reported the outages in its health.
 */
class ChaosScenariosTest {

  private static final Path HOME = Path.of(System.getProperty("kaon.home"));

  @Test
  void theCoordinatorKillAndCassandraOutageScenariosPassWithEveryInvariant() throws Exception {
    Path report = Path.of("target", "chaos").toAbsolutePath();
    deleteTree(report); // from an earlier run of the test: the tool appends to the nodes' logs
    // A baseline cache of the test's own: the first scenario trains the fault-free run, the second
    // (the same job) takes it from the cache.
    Map<String, String> env = Map.of("XDG_CACHE_HOME", report.resolveSibling("chaos-cache").toString());
    try (KaonProcess chaos = KaonProcess.start("chaos", env, "chaos", "run",
        HOME.resolve("deploy/chaos/coordinator-kill.yaml").toString(),
        HOME.resolve("deploy/chaos/cassandra-outage.yaml").toString(), "--seed", "12", "--report", report.toString())) {
      int code = chaos.awaitExit(Duration.ofMinutes(15));
      assertEquals(0, code, "kaon chaos run exited " + code + ":\n" + String.join("\n", chaos.lines()));
    }

    List<Observation> kills = HistoryFile.read(report.resolve("coordinator-kill/history.jsonl"));
    assertEquals(List.of("kill", "kill"), kinds(kills));
    // The coordinator moved with each kill: its journal was written by a new writer each time.
    Observation.JournalRead journal = only(kills, Observation.JournalRead.class);
    assertTrue(journal.runs().size() >= 3, "journal writers in turn: " + journal.runs());
    // Two workers on three nodes: a survivor always holds the state, no generation needs a checkpoint.
    kills.stream().filter(o -> o instanceof Observation.GenerationFormed g && g.generation() > 1)
        .map(o -> ((Observation.GenerationFormed) o).stateSource())
        .forEach(source -> assertTrue(source.startsWith("memory:"), "a generation resumed from " + source));
    assertTrue(Files.readString(report.resolve("coordinator-kill/report.md")).contains("**Every invariant held.**"));

    List<Observation> outage = HistoryFile.read(report.resolve("cassandra-outage-during-checkpoints/history.jsonl"));
    assertEquals(List.of("cassandra-stop", "cassandra-kill"), kinds(outage));
    // The job told of the outage through its health, and went on.
    assertTrue(outage.stream().anyMatch(o -> o instanceof Observation.StepsSeen s && !s.health().isEmpty()),
        "no sample showed the job degraded during the outages");
    assertTrue(outage.stream().anyMatch(o -> o instanceof Observation.JobEnded e && e.phase().equals("SUCCEEDED")));
  }

  private static void deleteTree(Path dir) throws java.io.IOException {
    if (Files.exists(dir)) {
      try (java.util.stream.Stream<Path> paths = Files.walk(dir)) {
        for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  private static List<String> kinds(List<Observation> history) {
    return history.stream().filter(Observation.FaultStarted.class::isInstance).map(o -> ((Observation.FaultStarted) o).kind())
        .toList();
  }

  private static <T> T only(List<Observation> history, Class<T> type) {
    List<T> found = history.stream().filter(type::isInstance).map(type::cast).toList();
    assertEquals(1, found.size(), type.getSimpleName() + " in the history");
    return found.get(0);
  }
}
