package kaon.actors.architecture;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * No source file of kaon-actors grows past 450 lines: a class that does is doing several things,
 * and the coordinator and the worker once grew to 1,400 and 700 lines that way. Split it by
 * concern (a child actor, a pure decision, a helper that holds one piece of state) rather than
 * squeezing it.
 */
class SourceSizeTest {

  private static final int MAX_LINES = 450;

  @Test
  void noSourceFileIsLongerThan450Lines() throws IOException {
    Path sources = Path.of("src/main/java");
    List<String> tooLong;
    try (Stream<Path> files = Files.walk(sources)) {
      tooLong = files.filter(f -> f.toString().endsWith(".java")).flatMap(f -> {
        long lines = lines(f);
        return lines > MAX_LINES ? Stream.of(sources.relativize(f) + " (" + lines + " lines)") : Stream.empty();
      }).sorted().toList();
    }
    assertEquals(List.of(), tooLong, "longer than " + MAX_LINES + " lines");
  }

  private static long lines(Path file) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
