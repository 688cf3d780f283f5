package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.NotSerializableException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Journals written by an earlier version still replay to the same jobs. The fixtures under {@code
 * journals/} are real journals, read back from Cassandra, of jobs the tests of that version ran;
 * each is decoded by {@link JobEventSerializer} and folded through {@link JobState}, as a
 * recovering coordinator does.
 */
class JournalReplayTest {

  private static final JobEventSerializer SERIALIZER = new JobEventSerializer(null);

  /** The events of fixture {@code name}, in journal order. */
  static List<JobEvent> journal(String name) throws IOException, NotSerializableException {
    List<JobEvent> events = new ArrayList<>();
    try (InputStream in = JournalReplayTest.class.getResourceAsStream("/journals/" + name + ".events")) {
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] fields = line.split(" ", -1);
        assertEquals(String.valueOf(JobEventSerializer.IDENTIFIER), fields[2], "serializer id of " + line);
        events.add((JobEvent) SERIALIZER.fromBinary(HexFormat.of().parseHex(fields[3]), fields[1]));
      }
    }
    return events;
  }

  static JobStatus replay(String name) throws IOException {
    JobState state = new JobState.Unsubmitted();
    for (JobEvent event : journal(name)) {
      state = state.apply(event);
    }
    return state.toStatus("replayed", "", "");
  }

  @Test
  void aJobThatCarriedOnFromASurvivorsMemoryReplaysToItsSuccess() throws IOException {
    JobStatus status = replay("memory-1");
    assertEquals(JobStatus.Phase.SUCCEEDED, status.phase());
    assertEquals(2, status.generation());
    assertTrue(status.stateSource().startsWith("memory:") && status.stateSource().endsWith("-worker-0"), status.stateSource());
    assertEquals(3, status.epochs().size());
    assertEquals(1200, status.stepsDone());
    assertEquals(1100, status.latestCheckpoint().step());
    assertEquals(64, status.digest().length());
  }

  @Test
  void aJournalWrittenBeforeTheEndsSaidWhenKnowsTheSubmissionButNotTheEnd() throws IOException {
    List<JobEvent> events = journal("memory-1");
    JobStatus status = replay("memory-1");
    long submitted = ((JobEvent.JobSubmitted) events.get(0)).atMillis();
    assertTrue(submitted > 0, "JobSubmitted has always had its time");
    assertEquals(submitted, status.createdAtMillis());
    assertEquals(((JobEvent.GenerationStarted) events.get(1)).atMillis(), status.startedAtMillis());
    assertEquals(0, status.endedAtMillis(), "not known");
  }

  @Test
  void aJobResumedFromACheckpointReplaysToItsSuccess() throws IOException {
    JobStatus status = replay("resume-1");
    assertEquals(JobStatus.Phase.SUCCEEDED, status.phase());
    assertEquals(2, status.generation());
    assertTrue(status.stateSource().startsWith("checkpoint:step-"), status.stateSource());
    assertEquals(1200, status.stepsDone());
    assertEquals(List.of(1, 2, 3), status.epochs().stream().map(EpochMetrics::epoch).toList());
  }

  @Test
  void aJobThatGrewReplaysWithItsGenerationsAndWhy() throws IOException {
    JobStatus status = replay("grower");
    assertEquals(JobStatus.Phase.SUCCEEDED, status.phase());
    assertEquals(2, status.worldSize());
    assertEquals(List.of(1L, 2L, 3L), status.generations().stream().map(GenerationInfo::generation).toList());
    assertEquals("growing from 1 to 2 ranks: devices free", status.generations().get(2).reason());
  }

  @Test
  void aJobThatGaveUpReplaysToItsFailureAndItsReason() throws IOException {
    JobStatus status = replay("diverging");
    assertEquals(JobStatus.Phase.FAILED, status.phase());
    assertEquals(6, status.generation());
    assertTrue(status.message().contains("generations in a row made no progress"), status.message());
  }

  @Test
  void aCancelledJobReplaysAsCancelled() throws IOException {
    JobStatus status = replay("too-big");
    assertEquals(JobStatus.Phase.CANCELLED, status.phase());
    assertEquals("cancelled by its owner", status.message());
  }
}
