package kaon.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class BuildVersionTest {

  @Test
  void versionNamesTheReleaseAndTheCommitItWasBuiltFrom() {
    CommandLine cli = KaonCli.commandLine();
    StringWriter out = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    assertEquals(0, cli.execute("--version"));
    // Filled in by the build: a placeholder left in means the resource was not filtered.
    assertTrue(out.toString().matches("kaon \\d+\\.\\d+\\.\\d+(-SNAPSHOT)? \\(commit ([0-9a-f]{12}|unknown)\\)\\R"), out.toString());
  }
}
