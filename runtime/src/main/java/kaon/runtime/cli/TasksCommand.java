package kaon.runtime.cli;

import java.util.concurrent.Callable;
import kaon.actors.training.TaskCatalog;
import kaon.actors.training.TrainingTask;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code kaon tasks}: the training tasks on the classpath. */
@Command(name = "tasks", mixinStandardHelpOptions = true, description = "List the training tasks this installation can run.")
final class TasksCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Override
  public Integer call() {
    for (TrainingTask task : TaskCatalog.load(getClass().getClassLoader()).registered()) {
      command.commandLine().getOut().printf("%-22s %s%n", task.name(), task.description());
    }
    return 0;
  }
}
