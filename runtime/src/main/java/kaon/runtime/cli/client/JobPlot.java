package kaon.runtime.cli.client;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Stroke;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;
import javax.imageio.ImageIO;
import kaon.protocol.v1.EpochResult;
import kaon.protocol.v1.Generation;
import kaon.protocol.v1.Job;

/**
 * {@code kaon job ID --plot FILE.png}: a job's loss, its train and test accuracy, and its samples/s
 * per epoch, one panel each, with a dashed line where each later generation resumed (a fault, a
 * resize) labelled with its number. Drawn with the JDK's own 2D graphics, headless: nothing to
 * install beyond a font, which every Debian JDK pulls in.
 */
final class JobPlot {

  static final int WIDTH = 1200;
  static final int PANEL_HEIGHT = 300;
  static final Color LOSS = new Color(0x2f6fdb);
  static final Color TRAIN = new Color(0x2f6fdb);
  static final Color TEST = new Color(0xe07b1a);
  static final Color RATE = new Color(0x1f8a4c);
  static final Color MARK = new Color(0xc23b32);
  private static final Color GRID = new Color(0xe6e9ee);
  private static final Color TEXT = new Color(0x1d2430);
  private static final int LEFT = 90;
  private static final int RIGHT = 30;
  private static final int TOP = 50;
  private static final int BOTTOM = 45;

  private JobPlot() {}

  /** One line of a panel. */
  private record Series(String name, Color color, ToDoubleFunction<EpochResult> value) {}

  /**
   * Writes the plot of {@code job} to {@code file} (PNG), through a temporary file beside it so
   * that a failure never leaves half a picture.
   *
   * @throws IllegalArgumentException when the job has no finished epoch yet: there is nothing to draw
   */
  static void write(Job job, Path file) throws IOException {
    if (job.getEpochsCount() == 0) {
      throw new IllegalArgumentException("job " + job.getJobId() + " has no finished epoch yet: nothing to plot");
    }
    BufferedImage image = draw(job);
    Path parent = file.toAbsolutePath().getParent();
    Path tmp = Files.createTempFile(parent, ".kaon-plot-", ".png");
    try {
      if (!ImageIO.write(image, "png", tmp.toFile())) {
        throw new IOException("this JDK cannot write PNG");
      }
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  static BufferedImage draw(Job job) {
    BufferedImage image = new BufferedImage(WIDTH, TOP / 2 + 3 * PANEL_HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, image.getWidth(), image.getHeight());
      g.setColor(TEXT);
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
      g.drawString("Job " + job.getJobId() + " (" + job.getSpec().getTask() + ", " + job.getPhase() + ")", LEFT, 24);
      List<double[]> marks = generationMarks(job);
      int y = TOP / 2;
      panel(g, y, "Loss (epoch mean)", job, List.of(new Series("loss", LOSS, EpochResult::getMeanLoss)), marks, false, "%.2f");
      y += PANEL_HEIGHT;
      panel(g, y, "Accuracy", job, List.of(new Series("train", TRAIN, EpochResult::getTrainAccuracy),
          new Series("test", TEST, EpochResult::getTestAccuracy)), marks, true, "%.2f");
      y += PANEL_HEIGHT;
      panel(g, y, "Samples/s", job, List.of(new Series("samples/s", RATE, EpochResult::getSamplesPerSecond)), marks, false,
          "%,.0f");
    } finally {
      g.dispose();
    }
    return image;
  }

  /**
   * Where each generation after the first resumed, in epochs (its resume step over the steps per
   * epoch), with its number: {x, generation}.
   */
  static List<double[]> generationMarks(Job job) {
    EpochResult first = job.getEpochs(0);
    double stepsPerEpoch = first.getEpoch() > 0 ? (double) first.getStepsDone() / first.getEpoch() : 0;
    List<double[]> marks = new ArrayList<>();
    if (stepsPerEpoch <= 0) {
      return marks;
    }
    for (Generation generation : job.getGenerationsList()) {
      if (generation.getGeneration() > 1) {
        marks.add(new double[] {generation.getResumeStep() / stepsPerEpoch, generation.getGeneration()});
      }
    }
    return marks;
  }

  /** The smallest of 1, 2, 2.5, 4, 5 or 8 times a power of ten at or above {@code v}: ticks at quarters read well. */
  static double roundUp(double v) {
    double magnitude = Math.pow(10, Math.floor(Math.log10(v)));
    for (double m : new double[] {1, 2, 2.5, 4, 5, 8, 10}) {
      if (m * magnitude >= v) {
        return m * magnitude;
      }
    }
    return 10 * magnitude;
  }

  private static void panel(Graphics2D g, int top, String title, Job job, List<Series> series, List<double[]> marks,
      boolean unitRange, String format) {
    int x0 = LEFT;
    int x1 = WIDTH - RIGHT;
    int y0 = top + TOP;
    int y1 = top + PANEL_HEIGHT - BOTTOM;
    List<EpochResult> epochs = job.getEpochsList();
    double xMax = Math.max(1, epochs.get(epochs.size() - 1).getEpoch());
    // Every figure here is at least 0: the axes start there, so panels compare at a glance.
    double hi = unitRange ? 1 : Double.NEGATIVE_INFINITY;
    if (!unitRange) {
      for (Series s : series) {
        for (EpochResult e : epochs) {
          hi = Math.max(hi, s.value().applyAsDouble(e));
        }
      }
      hi = hi <= 0 || !Double.isFinite(hi) ? 1 : roundUp(hi * 1.05);
    }
    double top0 = 0;
    double range = hi;
    java.util.function.DoubleUnaryOperator px = x -> x0 + x / xMax * (x1 - x0);
    java.util.function.DoubleUnaryOperator py = v -> y1 - (v - top0) / range * (y1 - y0);

    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
    g.setColor(TEXT);
    g.drawString(title, x0, y0 - 14);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    FontMetrics metrics = g.getFontMetrics();
    for (int i = 0; i <= 4; i++) {
      double v = top0 + range * i / 4;
      int y = (int) Math.round(py.applyAsDouble(v));
      g.setColor(GRID);
      g.drawLine(x0, y, x1, y);
      g.setColor(TEXT);
      String label = String.format(Locale.ROOT, format, v);
      g.drawString(label, x0 - 8 - metrics.stringWidth(label), y + 4);
    }
    int step = (int) Math.max(1, Math.ceil(xMax / 12));
    for (int e = 0; e <= xMax; e += step) {
      int x = (int) Math.round(px.applyAsDouble(e));
      g.drawLine(x, y1, x, y1 + 4);
      String label = Integer.toString(e);
      g.drawString(label, x - metrics.stringWidth(label) / 2, y1 + 18);
    }
    g.drawString("epoch", x1 - metrics.stringWidth("epoch"), y1 + 34);
    g.drawLine(x0, y0, x0, y1);
    g.drawLine(x0, y1, x1, y1);

    Stroke solid = g.getStroke();
    g.setColor(MARK);
    g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
    for (double[] mark : marks) {
      int x = (int) Math.round(px.applyAsDouble(Math.min(mark[0], xMax)));
      g.drawLine(x, y0, x, y1);
      g.drawString("gen " + (long) mark[1], x + 3, y0 + 12);
    }
    g.setStroke(new BasicStroke(2.2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
    int legend = x1 - 10;
    for (int i = series.size() - 1; i >= 0; i--) {
      Series s = series.get(i);
      Path2D.Double line = new Path2D.Double();
      for (int k = 0; k < epochs.size(); k++) {
        EpochResult e = epochs.get(k);
        double x = px.applyAsDouble(e.getEpoch());
        double y = py.applyAsDouble(s.value().applyAsDouble(e));
        if (k == 0) {
          line.moveTo(x, y);
        } else {
          line.lineTo(x, y);
        }
        g.setColor(s.color());
        g.fillOval((int) Math.round(x) - 4, (int) Math.round(y) - 4, 8, 8);
      }
      g.setColor(s.color());
      g.draw(line);
      legend -= metrics.stringWidth(s.name());
      g.drawString(s.name(), legend, y0 - 14);
      g.fillRect(legend - 16, y0 - 20, 12, 4);
      legend -= 30;
    }
    g.setStroke(solid);
  }
}
