package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import kaon.protocol.v1.CheckpointRef;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobSpecification;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon job ID}: one job in detail: its spec as the server completed it, where its state
 * came from, its latest checkpoint and health, every finished epoch and, once it has ended, the
 * outcome. With {@code --download FILE}, saves the job's trained model instead, checked against
 * its sha256 ({@link ModelDownload}); with {@code --plot FILE.png}, draws its curves ({@link JobPlot}).
 */
@Command(
    name = "job",
    mixinStandardHelpOptions = true,
    description = "Show a job in detail, or download its trained model.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "1:there is no such job, or (--download) it has not succeeded or has no stored model, or (--plot) it has no "
          + "finished epoch yet",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer; (--download) the model failed its sha256 "
          + "check or FILE cannot be written, and nothing was saved; (--plot) FILE cannot be written"
    })
final class JobCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Parameters(index = "0", paramLabel = "ID", description = "The job.")
  String jobId;

  @Option(names = "--download", paramLabel = "FILE",
      description = "Save the job's trained parameters (DJL .params) to FILE, from whichever node serves the API, once "
          + "the job has succeeded; the file's sha256, checked here, is the job's digest.")
  Path download;

  @Option(names = "--plot", paramLabel = "FILE.png",
      description = "Draw the job's loss, accuracy and samples/s per epoch, with its generation changes marked, to FILE "
          + "(PNG).")
  Path plot;

  @Override
  public Integer call() {
    if (plot != null && download != null) {
      throw new picocli.CommandLine.ParameterException(command.commandLine(), "--plot and --download: one at a time");
    }
    return connection.run(api -> {
      if (download != null) {
        ModelDownload.Saved saved = ModelDownload.save(api, jobId, download);
        command.commandLine().getOut().printf(Locale.ROOT, "Saved the model of job %s to %s (%,d bytes, sha256 %s)%n",
            jobId, saved.file(), saved.bytes(), saved.sha256());
        return 0;
      }
      Job job = api.call(api.jobs().getJob(), GetJobRequest.newBuilder().setJobId(jobId).build());
      if (plot != null) {
        try {
          JobPlot.write(job, plot);
        } catch (IllegalArgumentException e) {
          command.commandLine().getErr().println("kaon: " + e.getMessage());
          return ApiErrors.JOB_FAILED;
        } catch (java.io.IOException e) {
          command.commandLine().getErr().println("kaon: cannot write " + plot + ": " + e.getMessage());
          return ApiErrors.ENVIRONMENT;
        }
        command.commandLine().getOut().printf(Locale.ROOT, "Plotted %d epochs of job %s to %s%n", job.getEpochsCount(),
            jobId, plot);
        return 0;
      }
      if (!output.table()) {
        output.print(job, command.commandLine().getOut());
        return 0;
      }
      print(job, command.commandLine().getOut());
      return 0;
    });
  }

  static void print(Job job, PrintWriter out) {
    out.println("Job " + job.getJobId() + ": " + JobsCommand.phase(job));
    property(out, "task", job.getSpec().getTask());
    property(out, "workers", JobsCommand.workers(job));
    property(out, "recipe", recipe(job.getSpec()));
    if (!job.getSpec().getModelOutput().isEmpty()) {
      property(out, "model output", job.getSpec().getModelOutput() + " (in the model directory of rank 0's node)");
    }
    property(out, "generation", job.getGeneration()
        + (job.getStateSource().isEmpty() ? "" : ", state from " + job.getStateSource()));
    property(out, "steps", Long.toString(job.getStepsDone()));
    property(out, "checkpoint", job.hasLatestCheckpoint() ? checkpoint(job.getLatestCheckpoint()) : "none yet");
    property(out, "health", job.getHealth().isEmpty() ? "ok" : job.getHealth());
    if (job.hasCreatedAt()) {
      property(out, "created", time(job.getCreatedAt()));
    }
    if (job.hasEndedAt()) {
      property(out, "ended", time(job.getEndedAt()));
    }
    if (!job.getCoordinatorNode().isEmpty()) {
      property(out, "coordinator", job.getCoordinatorNode());
    }
    if (job.getGenerationsCount() > 1) {
      // How the job got here: every re-formation, why, and where its state came from.
      out.println("  generations:");
      for (kaon.protocol.v1.Generation g : job.getGenerationsList()) {
        out.println("    " + generationLine(g));
      }
    }
    if (job.getRanksCount() > 0) {
      // Where the current generation runs: a rank per line, with how its chunks travel.
      out.println("  ranks:");
      for (kaon.protocol.v1.RankPlacement rank : job.getRanksList()) {
        out.println("    " + rankLine(rank));
      }
    }
    for (EpochResult epoch : job.getEpochsList()) {
      out.println(JobEventPrinter.epochLine(epoch));
    }
    if (JobEventPrinter.hasEnded(job)) {
      out.println(JobEventPrinter.outcomeLine(job));
    }
  }

  private static String time(com.google.protobuf.Timestamp at) {
    return java.time.format.DateTimeFormatter.ISO_LOCAL_DATE_TIME.format(java.time.Instant.ofEpochSecond(at.getSeconds())
        .atZone(java.time.ZoneId.systemDefault()).toLocalDateTime());
  }

  /** One generation: number, when, ranks, resume step, state source, reason. */
  static String generationLine(kaon.protocol.v1.Generation g) {
    String when = g.getAtMillis() == 0 ? "" : java.time.format.DateTimeFormatter.ISO_LOCAL_TIME
        .format(java.time.Instant.ofEpochMilli(g.getAtMillis()).atZone(java.time.ZoneId.systemDefault()).toLocalTime()
            .truncatedTo(java.time.temporal.ChronoUnit.SECONDS)) + " ";
    return String.format(Locale.ROOT, "%d: %s%d ranks from step %d, state from %s (%s)", g.getGeneration(), when,
        g.getWorldSize(), g.getResumeStep(), g.getStateSource(), g.getReason());
  }

  /** One rank: number, worker, device and node, and its ring edge once known. */
  static String rankLine(kaon.protocol.v1.RankPlacement r) {
    return String.format(Locale.ROOT, "%d: worker %d on %s of %s%s", r.getRank(), r.getWorker(), r.getDevice(), r.getNode(),
        r.getEdge().isEmpty() ? "" : ", chunks to the next rank over " + r.getEdge()
            + (r.getEdgeReason().isEmpty() ? "" : " (" + r.getEdgeReason() + ")"));
  }

  private static void property(PrintWriter out, String name, String value) {
    out.printf(Locale.ROOT, "  %-12s %s%n", name, value);
  }

  /** The training settings, each only when the spec has it. */
  private static String recipe(JobSpecification spec) {
    List<String> parts = new ArrayList<>();
    if (spec.hasEpochs()) {
      parts.add(spec.getEpochs() + " epochs");
    }
    if (spec.hasGlobalBatch()) {
      parts.add("global batch " + spec.getGlobalBatch());
    }
    if (spec.hasOptimizer()) {
      parts.add(spec.getOptimizer());
    }
    if (spec.hasLearningRate()) {
      parts.add("lr " + spec.getLearningRate());
    }
    if (spec.hasMomentum()) {
      parts.add("momentum " + spec.getMomentum());
    }
    if (spec.hasWeightDecay()) {
      parts.add("weight decay " + spec.getWeightDecay());
    }
    if (spec.hasSeed()) {
      parts.add("seed " + spec.getSeed());
    }
    if (spec.getMaxSteps() > 0) {
      parts.add("at most " + spec.getMaxSteps() + " steps");
    }
    if (spec.hasCheckpointEverySteps()) {
      parts.add(spec.getCheckpointEverySteps() == 0
          ? "no checkpoints"
          : "checkpoint every " + spec.getCheckpointEverySteps() + " steps");
    }
    return parts.isEmpty() ? "task defaults" : String.join(", ", parts);
  }

  private static String checkpoint(CheckpointRef checkpoint) {
    return String.format(Locale.ROOT, "%s at step %d (epoch %d, %,d bytes)",
        checkpoint.getId(), checkpoint.getStep(), checkpoint.getEpoch(), checkpoint.getBytes());
  }
}
