package kaon.runtime.chaos;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.FaultEnded;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Observation.StepsSeen;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

class TimelineSvgTest {

  private static final List<Observation> HISTORY = List.of(
      new JobSubmitted(0, "j<1>", 2, 0, 128, 1, 2, false, ""),
      new GenerationFormed(100, "j<1>", 1, 2, 0, "init", "job submitted", List.of(0, 1)),
      new StepsSeen(1_000, "j<1>", 1, 10, 0, 2, null, ""),
      new StepsSeen(2_000, "j<1>", 1, 30, 0, 2, null, ""),
      new FaultStarted(2_500, 1, "hang", "node 2", "SIGSTOP for 3 s"),
      new FaultEnded(5_500, 1),
      new StepsSeen(7_000, "j<1>", 1, 80, 0, 2, null, ""),
      new GenerationFormed(8_000, "j<1>", 2, 1, 60, "checkpoint:c", "rank 1 failed", List.of(0)),
      new StepsSeen(9_000, "j<1>", 2, 65, 0, 1, null, ""),
      new EpochReported(9_500, "j<1>", 1, 90, 11520, true, 1, 0.9, 0.7));

  private static Document parse(String svg) throws Exception {
    return DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void drawsEachPanelEachFaultAndEachReformation() throws Exception {
    Document svg = parse(TimelineSvg.draw("run & \"title\"", HISTORY));
    // Steps, world size, samples/s and loss: one curve each for the one job.
    assertEquals(4, svg.getElementsByTagName("polyline").getLength());
    NodeList lines = svg.getElementsByTagName("line");
    // The fault's mark and generation 2's tick, each with its words as a tooltip.
    assertEquals(2, lines.getLength());
    assertEquals("fault 1: hang node 2 SIGSTOP for 3 s", lines.item(0).getTextContent());
    assertEquals("j<1> generation 2 (rank 1 failed) from checkpoint:c", lines.item(1).getTextContent());
    // The hang is shaded for its 3 s.
    assertTrue(svg.getElementsByTagName("rect").getLength() >= 6, "background, 4 panels and the hang's span");
  }

  @Test
  void samplesPerSecondAreMeasuredOverFiveSecondsWithinAGeneration() throws Exception {
    Document svg = parse(TimelineSvg.draw("t", HISTORY));
    // Steps 10 to 80 of 128 samples in the 6 s from 1 s to 7 s: one point. The samples a second
    // apart are not measured alone, and none is measured across the re-formation.
    String speed = svg.getElementsByTagName("polyline").item(2).getAttributes().getNamedItem("points").getNodeValue();
    assertEquals(1, speed.trim().split(" ").length, speed);
  }

  @Test
  void theWorldSizeHoldsUntilItsNextSample() throws Exception {
    Document svg = parse(TimelineSvg.draw("t", HISTORY));
    String[] points = svg.getElementsByTagName("polyline").item(1).getAttributes().getNamedItem("points").getNodeValue()
        .trim().split(" ");
    // Four samples drawn as steps: each after the first adds a corner at the old height.
    assertEquals(7, points.length);
    assertEquals(points[5].split(",")[1], points[4].split(",")[1], "the corner keeps world size 2");
    assertEquals(points[5].split(",")[0], points[6].split(",")[0], "then drops at the sample's time");
  }

  @Test
  void aJobKeepsItsColourInPanelsItHasNoCurveIn() throws Exception {
    // Job a has steps but no loss; job b has both: b's loss curve has b's colour, not the first one.
    Document svg = parse(TimelineSvg.draw("t", List.of(
        new JobSubmitted(0, "a", 1, 0, 128, 1, 1, false, ""),
        new JobSubmitted(1, "b", 1, 0, 128, 1, 1, false, ""),
        new StepsSeen(10, "a", 1, 5, 0, 1, null, ""),
        new StepsSeen(20, "b", 1, 5, 0, 1, null, ""),
        new EpochReported(30, "b", 1, 5, 640, true, 1, 0.9, 0.7))));
    NodeList curves = svg.getElementsByTagName("polyline");
    String bSteps = curves.item(1).getAttributes().getNamedItem("stroke").getNodeValue();
    String bLoss = curves.item(curves.getLength() - 1).getAttributes().getNamedItem("stroke").getNodeValue();
    assertEquals(bSteps, bLoss);
  }

  @Test
  void anEmptyHistoryStillDraws() throws Exception {
    assertEquals(0, parse(TimelineSvg.draw("nothing", List.of())).getElementsByTagName("polyline").getLength());
  }
}
