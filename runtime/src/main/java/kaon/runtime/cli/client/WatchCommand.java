package kaon.runtime.cli.client;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon watch ID}: prints a job's progress until it ends, from whatever point it has reached
 * (the epochs already done come first). Stopping the watch (Ctrl-C) does not stop the job.
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

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Override
  public Integer call() {
    return connection.run(api -> {
      JobEventPrinter printer = new JobEventPrinter(command.commandLine().getOut(), JobEventPrinter.onTerminal());
      api.watchJob(jobId, printer);
      return printer.exitCode();
    });
  }
}
