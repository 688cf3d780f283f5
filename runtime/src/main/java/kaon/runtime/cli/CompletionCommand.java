package kaon.runtime.cli;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon completion bash|zsh}: a completion script for every command and option, generated
 * from the command line itself (picocli's), so it cannot fall behind it. zsh reads the same script
 * through its bash compatibility, which the script turns on itself.
 */
@Command(name = "completion", description = {"Print a shell completion script for kaon.",
    "bash: source <(kaon completion bash)   (or save it in /etc/bash_completion.d/kaon)",
    "zsh:  source <(kaon completion zsh)    (in ~/.zshrc)"})
final class CompletionCommand implements Callable<Integer> {

  /** The shells the script works in. */
  enum Shell { bash, zsh }

  @Spec
  private CommandSpec spec;

  @Parameters(paramLabel = "SHELL", description = "bash or zsh.")
  private Shell shell;

  @Override
  public Integer call() {
    spec.commandLine().getOut().print(AutoComplete.bash("kaon", spec.root().commandLine()));
    spec.commandLine().getOut().flush();
    return 0;
  }
}
