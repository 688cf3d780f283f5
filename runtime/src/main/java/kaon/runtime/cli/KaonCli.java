package kaon.runtime.cli;

import kaon.runtime.cli.client.ClientCommands;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kaon} command. Exit codes are documented in every command's help. */
@Command(
    name = "kaon",
    mixinStandardHelpOptions = true,
    versionProvider = BuildVersion.class,
    description = "Elastic, self-healing data-parallel training on a Pekko cluster.",
    subcommands = {TrainCommand.class, NodeCommand.class, TasksCommand.class, AdminCommand.class, ChaosCommand.class,
        VersionCommand.class, CompletionCommand.class, CommandLine.HelpCommand.class},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "1:the job failed or was cancelled",
      "2:invalid command line",
      "3:the environment is not ready (data missing, unknown task)"
    })
public final class KaonCli {

  /** The job ran and failed, or was cancelled. */
  static final int JOB_FAILED = 1;
  /** Missing data, unknown task, unusable configuration. */
  static final int ENVIRONMENT = 3;

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The command line with Kaon's error handling; tests run it without exiting the JVM. */
  static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new KaonCli());
    ClientCommands.COMMANDS.forEach(cli::addSubcommand);
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      // Users get one line; the stack trace only when they ask for it.
      commandLine.getErr().println("kaon: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
      if (System.getenv("KAON_DEBUG") != null) {
        e.printStackTrace(commandLine.getErr());
      }
      return ENVIRONMENT;
    });
    return cli;
  }
}
