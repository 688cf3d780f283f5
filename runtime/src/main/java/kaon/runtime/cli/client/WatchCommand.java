package kaon.runtime.cli.client;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon watch ID}: prints a job's progress until it ends, from whatever point it has reached
 * (the epochs already done come first); with {@code -o json}, the API's events as they come, one
 * per line. Stopping the watch (Ctrl-C) does not stop the job.
 */
@Command(
    name = "watch",
    mixinStandardHelpOptions = true,
    description = "Print a job's per-epoch metrics until it ends; the exit code tells how it ended.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:the job succeeded",
      "1:the job failed or was cancelled, or there is no such job",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or the watch broke off before the job ended"
    })
final class WatchCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Override
  public Integer call() {
    return connection.run(api -> {
      // The printer keeps the job's end for the exit code; with -o it prints nothing itself, and
      // each event goes out as it came, one JSON object per line (or one YAML document).
      var out = command.commandLine().getOut();
      JobEventPrinter printer = new JobEventPrinter(output.table() ? out : new java.io.PrintWriter(java.io.Writer.nullWriter()),
          output.table() && JobEventPrinter.onTerminal());
      api.watchJob(jobId, event -> {
        printer.accept(event);
        if (!output.table()) {
          output.printLine(event, out);
        }
      });
      return printer.exitCode();
    });
  }
}
