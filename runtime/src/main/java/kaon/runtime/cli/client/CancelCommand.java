package kaon.runtime.cli.client;

import java.util.concurrent.Callable;
import kaon.protocol.v1.CancelJobRequest;
import kaon.protocol.v1.Job;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kaon cancel ID}: cancels a job; its workers stop and their devices are freed. */
@Command(
    name = "cancel",
    mixinStandardHelpOptions = true,
    description = "Cancel a job and print it.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:the job is cancelled",
      "1:there is no such job, or it has already ended",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class CancelCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Override
  public Integer call() {
    return connection.run(api -> {
      Job job = api.call(api.jobs().cancelJob(), CancelJobRequest.newBuilder().setJobId(jobId).build());
      command.commandLine().getOut().println(JobsCommand.summary(job));
      return 0;
    });
  }
}
