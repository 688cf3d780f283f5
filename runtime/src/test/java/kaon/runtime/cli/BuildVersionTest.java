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

  @Test
  void theVersionCommandPrintsWhatTheOptionPrints() {
    assertEquals(run("--version"), run("version"));
  }

  @Test
  void completionScriptsKnowEveryCommandAndRefuseUnknownShells() {
    String bash = run("completion", "bash");
    assertTrue(bash.contains("complete -F"), bash);
    for (String command : java.util.List.of("train", "submit", "watch", "jobs", "chaos", "version", "completion")) {
      assertTrue(bash.contains(command), "no " + command + " in the script");
    }
    assertEquals(bash, run("completion", "zsh"), "zsh reads the bash script");
    CommandLine cli = KaonCli.commandLine();
    StringWriter err = new StringWriter();
    cli.setErr(new PrintWriter(err, true));
    assertEquals(2, cli.execute("completion", "fish"));
    assertTrue(err.toString().contains("bash, zsh"), err.toString());
  }

  private static String run(String... args) {
    CommandLine cli = KaonCli.commandLine();
    StringWriter out = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    assertEquals(0, cli.execute(args));
    return out.toString();
  }
}
