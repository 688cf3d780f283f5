package kaon.runtime.cli.client;

import java.util.List;

/**
 * The {@code kaon} subcommands that talk to a running cluster through its gRPC API. Register them
 * with {@code ClientCommands.COMMANDS.forEach(commandLine::addSubcommand)}; each one's name is in
 * its {@code @Command}.
 */
public final class ClientCommands {

  /** submit, jobs, job, watch, cancel, scale, cluster and drain, in the order help should list them. */
  public static final List<Class<?>> COMMANDS = List.of(
      SubmitCommand.class,
      JobsCommand.class,
      JobCommand.class,
      WatchCommand.class,
      LogsCommand.class,
      CancelCommand.class,
      ScaleCommand.class,
      ClusterCommand.class,
      DrainCommand.class);

  private ClientCommands() {}
}
