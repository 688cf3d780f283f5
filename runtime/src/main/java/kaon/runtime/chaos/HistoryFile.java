package kaon.runtime.chaos;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A run's history as JSON lines ({@code history.jsonl}): one {@link Observation} per line with its
 * {@code type}, appended and flushed as it happens, so that a run that is killed leaves every
 * observation up to the kill for the checker.
 */
public final class HistoryFile implements AutoCloseable {

  // Unknown fields fail the read: a history is checked, and a misspelt field must not pass unseen.
  private static final ObjectMapper JSON = new ObjectMapper()
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  private final BufferedWriter out;
  private final List<Observation> kept = new ArrayList<>();

  private HistoryFile(BufferedWriter out) {
    this.out = out;
  }

  /** Starts a new history at {@code file} (replacing one there). */
  public static HistoryFile create(Path file) throws IOException {
    return new HistoryFile(Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE));
  }

  /** Appends an observation (and keeps it for {@link #observations()}). */
  public synchronized void record(Observation o) {
    try {
      out.write(line(o));
      out.newLine();
      out.flush();
      kept.add(o);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot append to the history", e);
    }
  }

  /** Everything recorded so far, in the order recorded. */
  public synchronized List<Observation> observations() {
    return List.copyOf(kept);
  }

  @Override
  public synchronized void close() throws IOException {
    out.close();
  }

  /** One observation as its JSON line. */
  static String line(Observation o) {
    try {
      return JSON.writerFor(Observation.class).writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("an observation that Jackson cannot write: " + o, e);
    }
  }

  /**
   * Reads a history file.
   *
   * @throws IOException naming the file and line of a line that is no observation
   */
  public static List<Observation> read(Path file) throws IOException {
    List<Observation> history = new ArrayList<>();
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    for (int k = 0; k < lines.size(); k++) {
      String line = lines.get(k).strip();
      if (line.isEmpty()) {
        continue;
      }
      try {
        history.add(JSON.readValue(line, Observation.class));
      } catch (JsonProcessingException e) {
        throw new IOException(file + ":" + (k + 1) + ": not an observation: " + e.getOriginalMessage(), e);
      }
    }
    return history;
  }
}
