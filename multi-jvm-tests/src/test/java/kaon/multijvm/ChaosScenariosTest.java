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
 * {@code kaon chaos run} as a user runs it, with two scenarios on one local cluster of its own
 * (three node JVMs and a Cassandra, all separate processes): the first seed node SIGKILLed and
 * started again at once, the coordinator's node SIGKILLed, a gradient chunk damaged on the wire
 * and a gradient poisoned and the checkpoint writes failed through the nodes' chaos service ({@code
 * src/test/resources/chaos/kills-and-damaged-data.yaml}); then {@code
 * deploy/chaos/cassandra-outage.yaml}, Cassandra stopped and SIGKILLed while the job checkpoints.
 * The tool's exit code is its verdict (one cluster at the end,
 * the same model bit for bit, ...); the histories it wrote must show that the faults really
 * struck: the coordinator moved to another node (a new writer of its journal), the survivors'
 * memory was enough to go on after the kills and the damaged chunk, the poisoned step was
 * refused, and the job reported the outages in its health. The restarted first node's log was
 * appended to, not replaced, by {@code cluster.sh}.
 */
class ChaosScenariosTest {

  private static final Path HOME = Path.of(System.getProperty("kaon.home"));

  @Test
  void theKillsDamagedDataAndCassandraOutageScenariosPassWithEveryInvariant() throws Exception {
    Path report = Path.of("target", "chaos").toAbsolutePath();
    deleteTree(report); // from an earlier run of the test: the tool appends to the nodes' logs
    // A baseline cache of the test's own: the first scenario trains the fault-free run, the second
    // (the same job) takes it from the cache.
    Map<String, String> env = Map.of("XDG_CACHE_HOME", report.resolveSibling("chaos-cache").toString());
    try (KaonProcess chaos = KaonProcess.start("chaos", env, "chaos", "run",
        Path.of("src", "test", "resources", "chaos", "kills-and-damaged-data.yaml").toAbsolutePath().toString(),
        HOME.resolve("deploy/chaos/cassandra-outage.yaml").toString(), "--seed", "12", "--report", report.toString())) {
      int code = chaos.awaitExit(Duration.ofMinutes(15));
      assertEquals(0, code, "kaon chaos run exited " + code + ":\n" + String.join("\n", chaos.lines()));
    }

    List<Observation> kills = HistoryFile.read(report.resolve("kills-and-damaged-data/history.jsonl"));
    assertEquals(List.of("kill", "kill", "chunk-corrupt", "poison-nan", "checkpoint-write-failure"), kinds(kills));
    List<Long> strikes = kills.stream().filter(o -> o instanceof Observation.FaultStruck)
        .map(o -> ((Observation.FaultStruck) o).strikes()).toList();
    assertEquals(List.of(1L, 1L), strikes.subList(0, 2), "the damage struck once each");
    assertTrue(strikes.get(2) > 0, "checkpoint writes refused: " + strikes);
    // The failing checkpoint writes were said in the job's health, with what refused them.
    assertTrue(kills.stream().anyMatch(o -> o instanceof Observation.StepsSeen s && s.health().contains("runtime fault")),
        "no sample showed the checkpoint writes failing");
    assertTrue(kills.stream().anyMatch(o -> o instanceof Observation.FaultStarted f && f.target().equals("node 1")));
    // The coordinator moved with the second kill (and the first, if node 1 ran it): its journal
    // was written by a new writer.
    Observation.JournalRead journal = only(kills, Observation.JournalRead.class);
    assertTrue(journal.runs().size() >= 2, "journal writers in turn: " + journal.runs());
    // Two workers on three nodes: after a kill or a damaged chunk a survivor holds the state, and
    // no generation needs a checkpoint; after the poisoned step the ranks gave their state up.
    List<Observation.GenerationFormed> later = kills.stream()
        .filter(o -> o instanceof Observation.GenerationFormed g && g.generation() > 1)
        .map(o -> (Observation.GenerationFormed) o).toList();
    assertTrue(later.stream().anyMatch(g -> g.reason().contains("checksum")), "a re-formation citing the checksum: " + later);
    for (Observation.GenerationFormed g : later) {
      boolean poisoned = g.reason().contains("non-finite");
      assertTrue(g.stateSource().startsWith(poisoned ? "checkpoint:" : "memory:"), "generation " + g.generation()
          + " (" + g.reason() + ") resumed from " + g.stateSource());
    }
    assertTrue(later.stream().anyMatch(g -> g.reason().contains("non-finite")), "a re-formation citing the poison: " + later);
    assertTrue(Files.readString(report.resolve("kills-and-damaged-data/report.md")).contains("**Every invariant held.**"));
    // cluster.sh appends a restarted node's output to its log, marking each start.
    String node1 = Files.readString(report.resolve("cluster/nodes/node-1.log"));
    assertTrue(node1.lines().filter(l -> l.startsWith("=== node 1 starting at ")).count() >= 2, "starts marked in node-1.log");

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
