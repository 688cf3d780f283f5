package kaon.runtime.cli;

import java.io.PrintWriter;
import java.util.Locale;
import kaon.actors.job.CheckpointInfo;
import kaon.actors.job.EpochMetrics;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobStatus;

/**
 * Prints a job's updates for a person: per epoch {@code Epoch N, loss: …, train acc: …, val acc:
 * …} with its throughput, a progress bar inside each epoch when the output is a terminal (plain
 * lines only otherwise, so logs and pipes stay clean), and the outcome at the end.
 */
final class JobConsole {

  private static final int BAR_WIDTH = 30;

  private final PrintWriter out;
  private final boolean terminal;
  private boolean barShown;
  private long generation;
  private String health = "";
  private CheckpointInfo checkpoint;

  JobConsole(PrintWriter out, boolean terminal) {
    this.out = out;
    this.terminal = terminal;
  }

  /** Prints one update; returns the final status once the job has ended, else null. */
  JobStatus show(JobCoordinator.JobUpdate update) {
    if (update instanceof JobCoordinator.Progress p) {
      showProgress(p);
    } else if (update instanceof JobCoordinator.EpochFinished e) {
      clearBar();
      out.println(epochLine(e.metrics()) + (checkpoint == null ? "" : ", checkpoint at step " + checkpoint.step()));
    } else if (update instanceof JobCoordinator.StatusChanged s) {
      JobStatus status = s.status();
      if (status.phase().isTerminal()) {
        clearBar();
        out.println(outcomeLine(status));
        return status;
      }
      showChanges(status);
    }
    out.flush();
    return null;
  }

  /** Generation changes and health, each once: watching again repeats the same status. */
  private void showChanges(JobStatus status) {
    checkpoint = status.latestCheckpoint();
    if (status.generation() > generation) {
      if (generation > 0 || status.generation() > 1) {
        clearBar();
        out.println("Generation " + status.generation() + ": resuming at step " + status.stepsDone() + " from "
            + status.stateSource());
      }
      generation = status.generation();
    }
    if (!status.health().equals(health)) {
      clearBar();
      out.println(status.health().isEmpty() ? "Healthy again: " + health + " is over" : "Degraded: " + status.health());
      health = status.health();
    }
  }

  static String epochLine(EpochMetrics m) {
    return String.format(Locale.ROOT,
        "Epoch %d, loss: %.4f, train acc: %.4f, val acc: %.4f (%,.0f samples/s, %.2f s, %d worker%s)",
        m.epoch(), m.meanLoss(), m.trainAccuracy(), m.testAccuracy(), m.samplesPerSecond(),
        m.trainSeconds(), m.worldSize(), m.worldSize() == 1 ? "" : "s");
  }

  static String outcomeLine(JobStatus status) {
    return switch (status.phase()) {
      case SUCCEEDED -> String.format(Locale.ROOT,
          "Test accuracy: %.4f after %d epochs (%d steps); job %s succeeded; parameters sha256 %s",
          status.testAccuracy(), status.epochs().size(), status.stepsDone(), status.jobId(), status.digest());
      case CANCELLED -> "Job " + status.jobId() + " was cancelled";
      default -> "Job " + status.jobId() + " failed: " + status.message();
    };
  }

  private void showProgress(JobCoordinator.Progress p) {
    if (!terminal) {
      return;
    }
    int filled = (int) ((long) BAR_WIDTH * p.step() / Math.max(1, p.stepsPerEpoch()));
    String bar = "=".repeat(filled) + (filled < BAR_WIDTH ? ">" + " ".repeat(BAR_WIDTH - filled - 1) : "");
    out.printf(Locale.ROOT, "\rEpoch %d [%s] %3d%% %d/%d loss %.4f",
        p.epoch(), bar, 100L * p.step() / Math.max(1, p.stepsPerEpoch()), p.step(), p.stepsPerEpoch(), p.meanLoss());
    barShown = true;
  }

  private void clearBar() {
    if (barShown) {
      out.print("\r\033[2K");
      barShown = false;
    }
  }
}
