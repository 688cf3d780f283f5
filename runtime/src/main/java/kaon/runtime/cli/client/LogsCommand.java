package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.Callable;
import kaon.protocol.v1.LogLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon logs ID [-f]}: a job's own log lines from every node that ran a part of it, in time
 * order, served by the API ({@code StreamJobLogs}); with {@code -f}, then each new line until the
 * job ends. Stopping it (Ctrl-C) does not stop the job.
 */
@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = "Print a job's log lines (generations, faults, warnings, errors) from every node that ran a part of it, "
        + "in time order; -f follows them until the job ends.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "1:there is no such job",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or the stream broke off"
    })
final class LogsCommand implements Callable<Integer> {

  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS")
      .withZone(ZoneId.systemDefault());

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Option(names = {"-f", "--follow"}, description = "Keep printing new lines until the job ends.")
  boolean follow;

  @Option(names = "--tail", paramLabel = "N", defaultValue = "0",
      description = "Only the newest N lines there are now (then, with -f, every new one); 0 for all (the default).")
  int tail;

  @Override
  public Integer call() {
    if (tail < 0) {
      throw new picocli.CommandLine.ParameterException(command.commandLine(), "--tail must be 0 or more, was " + tail);
    }
    return connection.run(api -> {
      PrintWriter out = command.commandLine().getOut();
      api.streamJobLogs(jobId, follow, tail, line -> {
        if (output.table()) {
          out.println(format(line));
          out.flush();
        } else {
          output.printLine(line, out);
        }
      });
      return 0;
    });
  }

  /** {@code 2026-12-05 12:40:54.123 INFO  127.0.0.1:25520 job x generation 2 ...}. */
  static String format(LogLine line) {
    String node = line.getNode();
    int at = node.indexOf('@');
    return TIME.format(Instant.ofEpochMilli(line.getAtMillis())) + " " + String.format("%-5s", line.getLevel()) + " "
        + (at >= 0 ? node.substring(at + 1) : node) + " " + line.getMessage();
  }
}
