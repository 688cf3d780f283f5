package kaon.runtime.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import kaon.runtime.chaos.ChaosReport;
import kaon.runtime.chaos.HistoryChecker;
import kaon.runtime.chaos.HistoryFile;
import kaon.runtime.chaos.Observation;
import kaon.runtime.chaos.Verdict;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon chaos}: failure injection and its checker. {@code check} judges a recorded history
 * again (after a checker change, or a history written by hand) and writes its report.
 */
@Command(name = "chaos", mixinStandardHelpOptions = true, description = "Check a chaos run's history against Kaon's invariants.",
    subcommands = {ChaosCommand.Check.class})
final class ChaosCommand {

  @Command(name = "check", mixinStandardHelpOptions = true,
      description = "Judge a history (history.jsonl of a chaos run or bench/random-faults) and write report.md and"
          + " timeline.svg.",
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:every invariant held", "1:an invariant was violated", "2:invalid command line",
          "3:the history cannot be read"})
  static final class Check implements Callable<Integer> {

    @Spec CommandSpec command;

    @Parameters(paramLabel = "HISTORY", description = "The history file (JSON lines).")
    Path history;

    @Option(names = "--report", paramLabel = "DIR", description = "Where report.md and timeline.svg go (default: beside HISTORY).")
    Path report;

    @Override
    public Integer call() throws IOException {
      PrintWriter out = command.commandLine().getOut();
      List<Observation> observed;
      try {
        observed = HistoryFile.read(history);
      } catch (NoSuchFileException e) {
        command.commandLine().getErr().println("kaon chaos check: " + history + ": no such file");
        return KaonCli.ENVIRONMENT;
      } catch (IOException e) {
        command.commandLine().getErr().println("kaon chaos check: " + e.getMessage());
        return KaonCli.ENVIRONMENT;
      }
      Verdict verdict = new HistoryChecker(HistoryChecker.Rules.standard()).check(observed);
      Path dir = report != null ? report : history.toAbsolutePath().getParent();
      Path written = ChaosReport.write(dir, "Chaos run: " + history.getFileName(), observed, verdict);
      ChaosReport.summary(observed, verdict).forEach(out::println);
      out.println("report: " + written);
      return verdict.held() ? 0 : KaonCli.JOB_FAILED;
    }
  }
}
