package kaon.runtime.cli.client;

import com.google.protobuf.util.Timestamps;
import java.io.PrintWriter;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code kaon jobs}: the cluster's jobs as a table, newest first. The column renderings here are
 * also how the other commands summarize a job in one line.
 */
@Command(
    name = "jobs",
    mixinStandardHelpOptions = true,
    description = "List the jobs of a running Kaon cluster, newest first.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class JobsCommand implements Callable<Integer> {

  /** The API gives at most this many jobs a page. */
  static final int MAX_PAGE_SIZE = 1000;

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Option(names = "--phase", paramLabel = "PHASE", split = ",", converter = PhaseName.class,
      completionCandidates = PhaseName.class,
      description = "Only jobs in this phase: starting, running, succeeded, failed or cancelled (any case). "
          + "Repeat it or separate phases with commas for several.")
  List<JobPhase> phases = new ArrayList<>();

  @Option(names = "--limit", paramLabel = "N",
      description = "Only the N newest jobs (of the phases asked for). Without it every job is listed: the command "
          + "asks for page after page until it has them all.")
  Integer limit;

  /** What AGE and DURATION are measured against; tests set a fixed one. */
  Clock clock = Clock.systemUTC();

  @Override
  public Integer call() {
    if (limit != null && limit < 1) {
      throw new ParameterException(command.commandLine(), "--limit must be at least 1, was " + limit);
    }
    PrintWriter out = command.commandLine().getOut();
    return connection.run(api -> {
      ListJobsResponse response = collect(phases, limit, request -> api.call(api.jobs().listJobs(), request));
      if (!output.table()) {
        output.print(response, out);
        return 0;
      }
      if (response.getJobsCount() == 0) {
        out.println(phases.isEmpty() ? "No jobs." : "No jobs " + phaseNames(phases) + ".");
        return 0;
      }
      Instant now = clock.instant();
      Table table = new Table("JOB", "PHASE", "TASK", "WORKERS", "EPOCHS", "TEST ACC", "AGE", "DURATION", "HEALTH");
      for (Job job : response.getJobsList()) {
        table.row(job.getJobId(), phase(job), job.getSpec().getTask(), workers(job), epochs(job), testAccuracy(job),
            age(job, now), duration(job, now), health(job));
      }
      table.print(out);
      if (limit != null && !response.getNextPageToken().isEmpty()) {
        // On the error stream: the table stays a table for grep and awk.
        command.commandLine().getErr().println("kaon: these are the " + limit + " newest; more jobs match (raise --limit, "
            + "or leave it out for all)");
      }
      return 0;
    });
  }

  /** One ListJobs call, as {@link ApiConnection#call} makes it. */
  interface ListCall {
    ListJobsResponse list(ListJobsRequest request) throws Exception;
  }

  /**
   * The jobs asked for, newest first, in one response as if the API had given them in one page:
   * page after page until the last, or until {@code limit} jobs (null for all). Its
   * next_page_token continues after the last job in it, and is empty when no job follows.
   *
   * @param call one ListJobs call
   */
  static ListJobsResponse collect(List<JobPhase> phases, Integer limit, ListCall call) throws Exception {
    ListJobsResponse.Builder all = ListJobsResponse.newBuilder();
    String token = "";
    ListJobsResponse page;
    do {
      // Each page asks every job's coordinator, whatever its size: the fewest, largest pages.
      int size = limit == null ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, limit - all.getJobsCount());
      page = call.list(ListJobsRequest.newBuilder().addAllPhases(phases).setPageSize(size).setPageToken(token).build());
      all.addAllJobs(page.getJobsList());
      token = page.getNextPageToken();
      // An empty page that names a next one would be asked for forever; the API never gives one.
    } while (!token.isEmpty() && page.getJobsCount() > 0 && (limit == null || all.getJobsCount() < limit));
    return all.setNextPageToken(token).build();
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

  /**
   * How long ago the job was submitted, in its two largest units: {@code 42s}, {@code 3m12s},
   * {@code 2h05m}, {@code 4d03h}, and whole days from a week on ({@code 12d}); "-" if not known.
   */
  static String age(Job job, Instant now) {
    return job.hasCreatedAt() ? span(Duration.between(instant(job.getCreatedAt()), now)) : "-";
  }

  /**
   * How long the job ran, from its start to its end, or to {@code now} while it has not ended, as
   * {@link #age}; "-" when a time it needs is not known.
   */
  static String duration(Job job, Instant now) {
    if (!job.hasStartedAt()) {
      return "-";
    }
    if (JobEventPrinter.hasEnded(job)) {
      return job.hasEndedAt() ? span(Duration.between(instant(job.getStartedAt()), instant(job.getEndedAt()))) : "-";
    }
    return span(Duration.between(instant(job.getStartedAt()), now));
  }

  /** {@code d} in its two largest units; a negative one (a clock behind the server's) is 0s. */
  static String span(Duration d) {
    long s = Math.max(0, d.toSeconds());
    if (s < 60) {
      return s + "s";
    } else if (s < 3600) {
      return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    } else if (s < 86_400) {
      return String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60);
    } else if (s < 7 * 86_400) {
      return String.format(Locale.ROOT, "%dd%02dh", s / 86_400, s % 86_400 / 3600);
    }
    return s / 86_400 + "d";
  }

  private static Instant instant(com.google.protobuf.Timestamp t) {
    return Instant.ofEpochMilli(Timestamps.toMillis(t));
  }

  /** {@code running} or {@code running or succeeded}, as the table writes phases. */
  private static String phaseNames(List<JobPhase> phases) {
    return phases.stream().distinct().map(p -> p.name().toLowerCase(Locale.ROOT)).collect(Collectors.joining(" or "));
  }

  /**
   * {@code --phase}: a phase by its name in any case (the valid ones are named when it is none of
   * them), and the names for shell completion.
   */
  static final class PhaseName implements ITypeConverter<JobPhase>, Iterable<String> {

    private static final List<JobPhase> PHASES =
        List.of(JobPhase.STARTING, JobPhase.RUNNING, JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED);

    @Override
    public JobPhase convert(String value) {
      for (JobPhase phase : PHASES) {
        if (phase.name().equalsIgnoreCase(value.strip())) {
          return phase;
        }
      }
      throw new TypeConversionException("'" + value + "' is not a phase; the phases are " + String.join(", ", this));
    }

    @Override
    public Iterator<String> iterator() {
      return PHASES.stream().map(p -> p.name().toLowerCase(Locale.ROOT)).iterator();
    }
  }

  private static String health(Job job) {
    if (JobEventPrinter.hasEnded(job)) {
      return "-";
    }
    return job.getHealth().isEmpty() ? "ok" : job.getHealth();
  }
}
