package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.Progress;
import org.junit.jupiter.api.Test;

class JobEventPrinterTest {

  private final StringWriter text = new StringWriter();

  private JobEventPrinter printer(boolean terminal) {
    return new JobEventPrinter(new PrintWriter(text), terminal);
  }

  private List<String> lines() {
    return text.toString().lines().toList();
  }

  private static EpochResult epoch(int n) {
    return EpochResult.newBuilder()
        .setEpoch(n)
        .setMeanLoss(0.31234)
        .setTrainAccuracy(0.88581)
        .setTestAccuracy(0.86949)
        .setSamplesPerSecond(58_719.4)
        .setTrainSeconds(1.0234)
        .setWorldSize(2)
        .setStepsDone(468L * n)
        .build();
  }

  private static Job.Builder job(JobPhase phase) {
    return Job.newBuilder().setJobId("job-1").setPhase(phase).setGeneration(1).setStateSource("init");
  }

  private static JobEvent status(Job.Builder job) {
    return JobEvent.newBuilder().setStatus(job).build();
  }

  private static JobEvent finished(EpochResult epoch) {
    return JobEvent.newBuilder().setEpoch(epoch).build();
  }

  private static JobEvent progress(int epoch, int step) {
    return JobEvent.newBuilder()
        .setProgress(Progress.newBuilder().setEpoch(epoch).setStep(step).setStepsPerEpoch(468).setMeanLoss(0.5))
        .build();
  }

  @Test
  void formatsAnEpochWithFourDecimalsAndThroughput() {
    assertEquals(
        "Epoch 3, loss: 0.3123, train acc: 0.8858, val acc: 0.8695 (58,719 samples/s, 1.02 s, 2 workers)",
        JobEventPrinter.epochLine(epoch(3)));
  }

  @Test
  void printsPlainLinesInArrivalOrderWhenNotATerminal() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING).setWorldSize(2)));
    printer.accept(progress(1, 100));
    printer.accept(finished(epoch(1)));
    printer.accept(progress(2, 100));
    printer.accept(finished(epoch(2)));
    printer.accept(status(job(JobPhase.SUCCEEDED).addEpochs(epoch(1)).addEpochs(epoch(2))
        .setStepsDone(936).setTestAccuracy(0.8695).setDigest("ab12")));

    assertFalse(text.toString().contains("\r"), text.toString());
    assertEquals(List.of(
        JobEventPrinter.epochLine(epoch(1)),
        JobEventPrinter.epochLine(epoch(2)),
        "Test accuracy: 0.8695 after 2 epochs (936 steps); job job-1 succeeded; parameters sha256 ab12"), lines());
    assertEquals(0, printer.exitCode());
  }

  @Test
  void drawsAProgressBarOnATerminalAndErasesItBeforeTheNextLine() {
    JobEventPrinter printer = printer(true);
    printer.accept(progress(1, 234));
    printer.accept(finished(epoch(1)));

    String out = text.toString();
    assertTrue(out.startsWith("\r"), out);
    assertTrue(out.contains("Epoch 1 [###############---------------]  50%"), out);
    assertTrue(out.contains("\r\033[2K" + JobEventPrinter.epochLine(epoch(1))), out);
  }

  @Test
  void showsEpochsFinishedBeforeTheWatchOnceEach() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING).addEpochs(epoch(1)).addEpochs(epoch(2))));
    printer.accept(finished(epoch(2)));
    printer.accept(status(job(JobPhase.RUNNING).addEpochs(epoch(1)).addEpochs(epoch(2))));
    printer.accept(finished(epoch(3)));

    assertEquals(List.of(
        JobEventPrinter.epochLine(epoch(1)),
        JobEventPrinter.epochLine(epoch(2)),
        JobEventPrinter.epochLine(epoch(3))), lines());
  }

  @Test
  void reportsDegradedAndHealthyAgainOnceEach() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING)));
    printer.accept(status(job(JobPhase.RUNNING).setHealth("checkpoint writes failing since 12:00:03")));
    printer.accept(status(job(JobPhase.RUNNING).setHealth("checkpoint writes failing since 12:00:03")));
    printer.accept(finished(epoch(1)));
    printer.accept(status(job(JobPhase.RUNNING)));
    printer.accept(status(job(JobPhase.RUNNING)));

    assertEquals(List.of(
        "Degraded: checkpoint writes failing since 12:00:03",
        JobEventPrinter.epochLine(epoch(1)),
        "Healthy again"), lines());
  }

  @Test
  void announcesANewGenerationAndWhereItsStateCameFrom() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING)));
    printer.accept(status(job(JobPhase.RUNNING).setGeneration(2).setStepsDone(400).setStateSource("checkpoint:c-7")));
    printer.accept(status(job(JobPhase.RUNNING).setGeneration(2).setStepsDone(410).setStateSource("checkpoint:c-7")));

    assertEquals(List.of("Generation 2: resuming at step 400 from checkpoint:c-7"), lines());
  }

  @Test
  void aNewGenerationSaysWhyItFormed() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING)));
    printer.accept(status(job(JobPhase.RUNNING).setGeneration(2).setStepsDone(512).setStateSource("memory:j-worker-0")
        .addGenerations(StubKaonApi.generation(1, 0, "job submitted", "init", 0))
        .addGenerations(StubKaonApi.generation(2, 512, "rank 1 failed: all-reduce missed its deadline", "memory:j-worker-0", 0))));

    assertEquals(List.of("Generation 2: resuming at step 512 from memory:j-worker-0 (rank 1 failed: all-reduce missed its deadline)"),
        lines());
  }

  @Test
  void endsWithWhyAFailedJobFailedAndExitCode1() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.FAILED).setMessage("worker 1: out of memory")));
    printer.accept(status(job(JobPhase.FAILED).setMessage("worker 1: out of memory")));

    assertEquals(List.of("Job job-1 failed: worker 1: out of memory"), lines());
    assertEquals(ApiErrors.JOB_FAILED, printer.exitCode());
  }

  @Test
  void endsWithACancelledLineAndExitCode1() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.CANCELLED)));

    assertEquals(List.of("Job job-1 was cancelled"), lines());
    assertEquals(ApiErrors.JOB_FAILED, printer.exitCode());
  }

  @Test
  void hasNoExitCodeWhenTheStreamStoppedBeforeTheJobEnded() {
    JobEventPrinter printer = printer(false);
    printer.accept(status(job(JobPhase.RUNNING)));

    IllegalStateException e = assertThrows(IllegalStateException.class, printer::exitCode);
    assertTrue(e.getMessage().contains("kaon watch job-1"), e.getMessage());
  }
}
