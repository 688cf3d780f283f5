package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code kaon jobs}: the cluster's jobs as a table. The column renderings here are also how the
 * other commands summarize a job in one line.
 */
@Command(
    name = "jobs",
    mixinStandardHelpOptions = true,
    description = "List the jobs of a running Kaon cluster.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class JobsCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Override
  public Integer call() {
    PrintWriter out = command.commandLine().getOut();
    return connection.run(api -> {
      ListJobsResponse response = api.call(api.jobs().listJobs(), ListJobsRequest.getDefaultInstance());
      if (!output.table()) {
        output.print(response, out);
        return 0;
      }
      if (response.getJobsCount() == 0) {
        out.println("No jobs.");
        return 0;
      }
      Table table = new Table("JOB", "PHASE", "TASK", "WORKERS", "EPOCHS", "TEST ACC", "HEALTH");
      for (Job job : response.getJobsList()) {
        table.row(job.getJobId(), phase(job), job.getSpec().getTask(), workers(job), epochs(job), testAccuracy(job),
            health(job));
      }
      table.print(out);
      return 0;
    });
  }

  /** A job in one line: {@code Job ID: running, TASK, 2 of 1..4 workers, 3/10 epochs}. */
  static String summary(Job job) {
    return "Job " + job.getJobId() + ": " + phase(job) + ", " + job.getSpec().getTask() + ", " + workers(job)
        + " workers, " + epochs(job) + " epochs"
        + (job.getHealth().isEmpty() || JobEventPrinter.hasEnded(job) ? "" : ", degraded: " + job.getHealth())
        + (job.getMessage().isEmpty() ? "" : ": " + job.getMessage());
  }

  /** {@code running}, {@code succeeded}, ... */
  static String phase(Job job) {
    return job.getPhase() == JobPhase.JOB_PHASE_UNSPECIFIED || job.getPhase() == JobPhase.UNRECOGNIZED
        ? "unknown"
        : job.getPhase().name().toLowerCase(Locale.ROOT);
  }

  /**
   * The world size and its bounds: {@code 2} for a fixed size, {@code 2 of 1..4} for an elastic
   * one, only the bounds while the job has no workers.
   */
  static String workers(Job job) {
    JobSpecification spec = job.getSpec();
    String bounds = spec.getMinWorkers() == spec.getMaxWorkers()
        ? Integer.toString(spec.getMinWorkers())
        : spec.getMinWorkers() + ".." + spec.getMaxWorkers();
    if (job.getWorldSize() == 0) {
      return bounds;
    }
    return spec.getMinWorkers() == spec.getMaxWorkers() && job.getWorldSize() == spec.getMinWorkers()
        ? bounds
        : job.getWorldSize() + " of " + bounds;
  }

  /** Finished epochs of all: {@code 3/10}. */
  static String epochs(Job job) {
    return job.getEpochsCount() + "/" + (job.getSpec().hasEpochs() ? Integer.toString(job.getSpec().getEpochs()) : "?");
  }

  /** The final test accuracy, or the latest epoch's while the job runs. */
  private static String testAccuracy(Job job) {
    if (job.getPhase() == JobPhase.SUCCEEDED) {
      return String.format(Locale.ROOT, "%.4f", job.getTestAccuracy());
    }
    return job.getEpochsCount() == 0
        ? "-"
        : String.format(Locale.ROOT, "%.4f", job.getEpochs(job.getEpochsCount() - 1).getTestAccuracy());
  }

  private static String health(Job job) {
    if (JobEventPrinter.hasEnded(job)) {
      return "-";
    }
    return job.getHealth().isEmpty() ? "ok" : job.getHealth();
  }
}
