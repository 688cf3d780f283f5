package kaon.runtime.cli.client;

import java.util.concurrent.Callable;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.ScaleJobRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon scale ID --min M --max N}: changes the bounds of a job's world size; a job running
 * outside the new bounds changes its size.
 */
@Command(
    name = "scale",
    mixinStandardHelpOptions = true,
    description = "Change how many workers a job may run on, and print it.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:the bounds are changed",
      "1:there is no such job, or it has already ended",
      "2:invalid command line or bounds",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class ScaleCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Option(names = "--min", paramLabel = "M", required = true, description = "Fewest workers.")
  int minWorkers;

  @Option(names = "--max", paramLabel = "N", required = true, description = "Most workers.")
  int maxWorkers;

  @Override
  public Integer call() {
    return connection.run(api -> {
      Job job = api.call(api.jobs().scaleJob(),
          ScaleJobRequest.newBuilder().setJobId(jobId).setMinWorkers(minWorkers).setMaxWorkers(maxWorkers).build());
      command.commandLine().getOut().println(JobsCommand.summary(job));
      return 0;
    });
  }
}
