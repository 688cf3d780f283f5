package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Consumer;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.Progress;

/**
 * Shows a person what a {@code WatchJob} stream says, as it arrives: one line per finished epoch,
 * a line when the job changes generation or its health changes, the outcome at the end, and a
 * progress bar inside each epoch when the output is a terminal. Into a pipe or a log it writes
 * plain lines only, never a carriage return.
 *
 * <p>A watch starts with the job's status, which holds the epochs finished before the watch began;
 * those are printed first, so watching a job midway reads like having watched it from the start.
 * Each epoch, generation, health change and outcome is printed once even when the server repeats
 * a status.
 *
 * <pre>{@code
 * JobEventPrinter printer = new JobEventPrinter(out, JobEventPrinter.onTerminal());
 * api.watchJob(jobId, printer);
 * return printer.exitCode();
 * }</pre>
 */
public final class JobEventPrinter implements Consumer<JobEvent> {

  private static final int BAR_WIDTH = 30;
  /** Back to the start of the line and erase it (VT100; every terminal emulator in use knows it). */
  private static final String ERASE_LINE = "\r\033[2K";

  private final PrintWriter out;
  private final boolean terminal;
  private String jobId = "";
  private final java.util.Set<Integer> epochsShown = new java.util.HashSet<>();
  private long generation;
  private String health = "";
  private boolean barShown;
  private Optional<Job> ended = Optional.empty();

  /**
   * @param out where to print; flushed after every event
   * @param terminal whether {@code out} is a terminal, and so may show a progress bar
   */
  public JobEventPrinter(PrintWriter out, boolean terminal) {
    this.out = out;
    this.terminal = terminal;
  }

  /**
   * Whether standard output is an interactive terminal that takes the progress bar's escape codes,
   * as picocli decides it for colors: {@code System.console() != null} is not enough, since JDK 22
   * gives a console even to a process whose output is redirected to a file or a pipe, which then
   * fills with bar redraws (picocli asks {@code Console.isTerminal()} where it exists). {@code
   * NO_COLOR} and {@code -Dpicocli.ansi=false} turn the bar off too.
   */
  public static boolean onTerminal() {
    return picocli.CommandLine.Help.Ansi.AUTO.enabled();
  }

  /** Prints what {@code event} changes. */
  @Override
  public void accept(JobEvent event) {
    switch (event.getEventCase()) {
      case STATUS -> status(event.getStatus());
      case PROGRESS -> progress(event.getProgress());
      case EPOCH -> epoch(event.getEpoch());
      case EVENT_NOT_SET -> {
        // A kind of event from a newer server: nothing this client knows how to show.
      }
    }
    out.flush();
  }

  /**
   * The exit code once the stream has completed: 0 when the job succeeded, {@link
   * ApiErrors#JOB_FAILED} when it failed or was cancelled.
   *
   * @throws IllegalStateException when no status said the job ended (the stream stopped early)
   */
  public int exitCode() {
    Job job = ended.orElseThrow(() -> new IllegalStateException(
        "the watch of job " + jobId + " ended before the job did; run kaon watch " + jobId + " again"));
    return job.getPhase() == JobPhase.SUCCEEDED ? 0 : ApiErrors.JOB_FAILED;
  }

  /** {@code Epoch N, loss: …, train acc: …, val acc: … (S samples/s, T s, W workers)}. */
  static String epochLine(EpochResult epoch) {
    return String.format(Locale.ROOT,
        "Epoch %d, loss: %.4f, train acc: %.4f, val acc: %.4f (%,.0f samples/s, %.2f s, %d worker%s)",
        epoch.getEpoch(), epoch.getMeanLoss(), epoch.getTrainAccuracy(), epoch.getTestAccuracy(),
        epoch.getSamplesPerSecond(), epoch.getTrainSeconds(), epoch.getWorldSize(), epoch.getWorldSize() == 1 ? "" : "s");
  }

  /** The last line of a finished job: its test accuracy and digest, or why it did not succeed. */
  static String outcomeLine(Job job) {
    return switch (job.getPhase()) {
      case SUCCEEDED -> String.format(Locale.ROOT,
          "Test accuracy: %.4f after %d epochs (%d steps); job %s succeeded; parameters sha256 %s",
          job.getTestAccuracy(), job.getEpochsCount(), job.getStepsDone(), job.getJobId(), job.getDigest());
      case CANCELLED -> "Job " + job.getJobId() + " was cancelled";
      default -> "Job " + job.getJobId() + " failed: " + job.getMessage();
    };
  }

  /** Whether the job is over: succeeded, failed or cancelled. */
  static boolean hasEnded(Job job) {
    return job.getPhase() == JobPhase.SUCCEEDED || job.getPhase() == JobPhase.FAILED
        || job.getPhase() == JobPhase.CANCELLED;
  }

  private void status(Job job) {
    jobId = job.getJobId();
    if (ended.isPresent()) {
      return;
    }
    job.getEpochsList().forEach(this::epoch);
    if (hasEnded(job)) {
      // How it got here (generations, health) no longer matters once the outcome is known.
      line(outcomeLine(job));
      ended = Optional.of(job);
      return;
    }
    if (job.getGeneration() > generation) {
      if (job.getGeneration() > 1) {
        String why = job.getGenerationsCount() == 0 ? ""
            : " (" + job.getGenerations(job.getGenerationsCount() - 1).getReason() + ")";
        line("Generation " + job.getGeneration() + ": resuming at step " + job.getStepsDone() + " from "
            + job.getStateSource() + why);
      }
      generation = job.getGeneration();
    }
    if (!job.getHealth().equals(health)) {
      line(job.getHealth().isEmpty() ? "Healthy again" : "Degraded: " + job.getHealth());
      health = job.getHealth();
    }
  }

  private void epoch(EpochResult epoch) {
    // A status lists epochs an epoch event may already have shown, and vice versa. An epoch can
    // also reach the journal after a later one (its result waited through a coordinator restart):
    // it is shown when it comes, late rather than never.
    if (epochsShown.add(epoch.getEpoch())) {
      line(epochLine(epoch));
    }
  }

  private void progress(Progress progress) {
    if (!terminal || ended.isPresent()) {
      return;
    }
    int steps = Math.max(1, progress.getStepsPerEpoch());
    int step = Math.min(progress.getStep(), steps);
    int filled = BAR_WIDTH * step / steps;
    String bar = "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled);
    out.print(String.format(Locale.ROOT, "%sEpoch %d [%s] %3d%%  step %d/%d  loss %.4f", ERASE_LINE,
        progress.getEpoch(), bar, 100L * step / steps, progress.getStep(), progress.getStepsPerEpoch(),
        progress.getMeanLoss()));
    barShown = true;
  }

  /** Prints a whole line, first taking the progress bar off it. */
  private void line(String text) {
    if (barShown) {
      out.print(ERASE_LINE);
      barShown = false;
    }
    out.println(text);
  }
}
