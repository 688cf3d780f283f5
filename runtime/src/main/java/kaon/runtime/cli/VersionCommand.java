package kaon.runtime.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code kaon version}: what {@code kaon --version} prints, as a command for scripts that expect one. */
@Command(name = "version", description = "Print kaon's version and the git commit it was built from.")
final class VersionCommand implements Callable<Integer> {

  @Spec
  private CommandSpec spec;

  @Override
  public Integer call() {
    for (String line : new BuildVersion().getVersion()) {
      spec.commandLine().getOut().println(line);
    }
    spec.commandLine().getOut().flush();
    return 0;
  }
}
