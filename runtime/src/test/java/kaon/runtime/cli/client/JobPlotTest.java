package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobSpecification;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobPlotTest {

  private static Job job() {
    Job.Builder job = Job.newBuilder().setJobId("plot-1").setPhase(JobPhase.SUCCEEDED)
        .setSpec(JobSpecification.newBuilder().setTask("fashion-mnist-mlp"))
        .addGenerations(Generation.newBuilder().setGeneration(1).setResumeStep(0))
        .addGenerations(Generation.newBuilder().setGeneration(2).setResumeStep(1_170).setReason("rank 1 failed"));
    double[] loss = {0.86, 0.52, 0.46, 0.42};
    for (int e = 1; e <= 4; e++) {
      job.addEpochs(EpochResult.newBuilder().setEpoch(e).setMeanLoss(loss[e - 1]).setTrainAccuracy(0.68 + e * 0.04)
          .setTestAccuracy(0.79 + e * 0.02).setSamplesPerSecond(e == 3 ? 20_000 : 40_000).setStepsDone(468L * e));
    }
    return job.build();
  }

  @Test
  void aGenerationIsMarkedWhereItResumedInEpochs() {
    List<double[]> marks = JobPlot.generationMarks(job());
    assertEquals(1, marks.size());
    assertEquals(2.5, marks.get(0)[0], 1e-9);
    assertEquals(2, marks.get(0)[1]);
  }

  @Test
  void thePngHasThreePanelsWithTheirCurvesAndTheMark(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("job.png");
    JobPlot.write(job(), file);
    BufferedImage image = ImageIO.read(file.toFile());
    assertEquals(JobPlot.WIDTH, image.getWidth());
    int third = image.getHeight() / 3;
    // Each panel holds its series' colour; the accuracy panel both; every panel the mark's.
    assertTrue(has(image, 0, third, JobPlot.LOSS), "the loss curve");
    assertTrue(has(image, third, 2 * third, JobPlot.TEST), "the test accuracy curve");
    assertTrue(has(image, 2 * third, image.getHeight(), JobPlot.RATE), "the samples/s curve");
    assertTrue(has(image, 0, third, JobPlot.MARK), "generation 2's mark");
    assertEquals(List.of("job.png"), Files.list(dir).map(p -> p.getFileName().toString()).toList(), "no temporary file left");
  }

  @Test
  void axesEndAtARoundNumber() {
    assertEquals(1.0, JobPlot.roundUp(0.95), 1e-12);
    assertEquals(80_000, JobPlot.roundUp(78_393), 1e-9);
    assertEquals(25, JobPlot.roundUp(21), 1e-9);
    assertEquals(100, JobPlot.roundUp(100), 1e-9);
  }

  @Test
  void aJobWithoutAFinishedEpochHasNothingToPlot(@TempDir Path dir) {
    Job empty = Job.newBuilder().setJobId("new").build();
    var e = assertThrows(IllegalArgumentException.class, () -> JobPlot.write(empty, dir.resolve("x.png")));
    assertTrue(e.getMessage().contains("no finished epoch"), e.getMessage());
  }

  private static boolean has(BufferedImage image, int fromY, int toY, Color color) {
    for (int y = fromY; y < toY; y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        if (image.getRGB(x, y) == color.getRGB()) {
          return true;
        }
      }
    }
    return false;
  }
}
