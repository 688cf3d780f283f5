package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.RanksPlaced;
import kaon.runtime.chaos.Observation.StepsSeen;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HistoryFileTest {

  @TempDir
  Path dir;

  @Test
  void observationsComeBackAsWritten() throws IOException {
    List<Observation> written = List.of(
        new FaultStarted(10, 1, "kill", "node 2", "SIGKILL"),
        new StepsSeen(20, "j", 1, 7, 468, 2, null, ""),
        new StepsSeen(21, "j", 1, 8, 468, 2, Double.NaN, "checkpoint writes failing since 12:00:01"),
        new RanksPlaced(30, "j", 1, List.of(new RanksPlaced.Rank(0, 3, "pekko://kaon@10.0.0.1:2552", "cpu:0"))),
        new JournalRead(40, "j", List.of(new JournalRead.WriterRun("w", 1, 9)), List.of(4L)));
    Path file = dir.resolve("history.jsonl");
    try (HistoryFile history = HistoryFile.create(file)) {
      written.forEach(history::record);
      assertEquals(written, history.observations());
    }
    assertEquals(written, HistoryFile.read(file));
    assertTrue(Files.readAllLines(file).get(0).startsWith("{\"type\":\"fault-started\""), "one typed object per line");
  }

  @Test
  void aLineThatIsNoObservationIsNamed() throws IOException {
    Path file = dir.resolve("history.jsonl");
    Files.writeString(file, HistoryFile.line(new FaultStarted(10, 1, "kill", "node 2", "")) + "\n"
        + "{\"type\":\"fault-started\",\"atMillis\":11,\"fault\":2,\"kind\":\"hang\",\"target\":\"n\",\"detial\":\"\"}\n");
    IOException e = assertThrows(IOException.class, () -> HistoryFile.read(file));
    assertTrue(e.getMessage().startsWith(file + ":2: not an observation"), e.getMessage());
  }
}
