package kaon.runtime.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.FaultEnded;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobSubmitted;
import kaon.runtime.chaos.Observation.StepsSeen;

/**
 * A run's timeline as an SVG picture ({@code timeline.svg}): four panels over the same time axis,
 * the steps each job reached, its world size, its training speed in samples/s and its epochs' mean
 * loss, with every fault as a vertical mark (shaded while it lasted) and every re-formation as a
 * tick. Drawn from the history alone, so a history written by hand draws the same way.
 */
public final class TimelineSvg {

  private static final int WIDTH = 1200;
  private static final int LEFT = 80;
  private static final int RIGHT = 20;
  private static final int PANEL = 150;
  private static final int GAP = 45;
  private static final int TOP = 60;
  private static final String[] JOB_COLOURS = {"#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22"};
  // Speed is measured over at least this long: samples a second apart make a jagged curve.
  private static final long SPEED_WINDOW_MILLIS = 5_000;

  private TimelineSvg() {}

  /** One point of a job's curve: seconds since the run began, and the value. */
  private record Point(double seconds, double value) {}

  /** The picture of a history. */
  public static String draw(String title, List<Observation> history) {
    List<Observation> ordered = new ArrayList<>(history);
    ordered.sort(Comparator.comparingLong(Observation::atMillis));
    long start = ordered.isEmpty() ? 0 : ordered.get(0).atMillis();
    long end = ordered.isEmpty() ? 1 : Math.max(start + 1, ordered.get(ordered.size() - 1).atMillis());
    double span = (end - start) / 1000.0;
    Map<String, Integer> batch = new LinkedHashMap<>();
    ordered.stream().filter(JobSubmitted.class::isInstance).map(JobSubmitted.class::cast)
        .forEach(s -> batch.put(s.jobId(), s.globalBatch()));
    Map<String, List<Point>> steps = new LinkedHashMap<>();
    Map<String, List<Point>> world = new LinkedHashMap<>();
    Map<String, List<Point>> speed = new LinkedHashMap<>();
    Map<String, List<Point>> loss = new LinkedHashMap<>();
    Map<String, StepsSeen> previous = new LinkedHashMap<>();
    for (Observation o : ordered) {
      double t = (o.atMillis() - start) / 1000.0;
      if (o instanceof StepsSeen s && batch.containsKey(s.jobId())) {
        steps.computeIfAbsent(s.jobId(), k -> new ArrayList<>()).add(new Point(t, s.step()));
        world.computeIfAbsent(s.jobId(), k -> new ArrayList<>()).add(new Point(t, s.worldSize()));
        StepsSeen before = previous.get(s.jobId());
        if (before == null || before.generation() != s.generation()) {
          previous.put(s.jobId(), s); // a new generation starts a new window
        } else if (s.atMillis() - before.atMillis() >= SPEED_WINDOW_MILLIS) {
          double samples = Math.max(0, s.step() - before.step()) * (double) batch.get(s.jobId());
          speed.computeIfAbsent(s.jobId(), k -> new ArrayList<>())
              .add(new Point(t, samples * 1000.0 / (s.atMillis() - before.atMillis())));
          previous.put(s.jobId(), s);
        }
      } else if (o instanceof EpochReported e && batch.containsKey(e.jobId()) && Double.isFinite(e.meanLoss())) {
        loss.computeIfAbsent(e.jobId(), k -> new ArrayList<>()).add(new Point(t, e.meanLoss()));
      }
    }
    StringBuilder svg = new StringBuilder();
    int height = TOP + 4 * (PANEL + GAP) + 20;
    svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        + "font-family=\"sans-serif\" font-size=\"12\">%n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>%n", WIDTH, height));
    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" font-size=\"16\">%s</text>%n", LEFT, escape(title)));
    String[] names = {"steps reached", "world size", "samples/s", "epoch mean loss"};
    List<Map<String, List<Point>>> series = List.of(steps, world, speed, loss);
    // A job keeps its colour in every panel, even one it has no curve in.
    Map<String, String> colours = new LinkedHashMap<>();
    batch.keySet().forEach(job -> colours.put(job, JOB_COLOURS[colours.size() % JOB_COLOURS.length]));
    for (int p = 0; p < 4; p++) {
      // A world size holds until the next sample; the other values move between samples.
      panel(svg, p, names[p], series.get(p), colours, span, p == 1);
    }
    faults(svg, ordered, start, span, height);
    generations(svg, ordered, start, span);
    legend(svg, batch.keySet(), ordered.stream().filter(FaultStarted.class::isInstance)
        .map(o -> ((FaultStarted) o).kind()).distinct().toList(), height);
    svg.append("</svg>\n");
    return svg.toString();
  }

  private static int panelTop(int panel) {
    return TOP + panel * (PANEL + GAP);
  }

  private static double x(double seconds, double span) {
    return LEFT + (WIDTH - LEFT - RIGHT) * seconds / span;
  }

  private static void panel(StringBuilder svg, int panel, String name, Map<String, List<Point>> curves,
      Map<String, String> colours, double span, boolean stepped) {
    int top = panelTop(panel);
    double highest = curves.values().stream().flatMap(List::stream).mapToDouble(Point::value).max().orElse(1);
    double max = highest <= 0 ? 1 : highest * 1.05;
    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>%n", LEFT, top - 8, name));
    svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>%n",
        LEFT, top, WIDTH - LEFT - RIGHT, PANEL));
    for (int k = 0; k <= 2; k++) {
      double value = max * k / 2;
      double y = top + PANEL - PANEL * k / 2.0;
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", LEFT - 6, y + 4,
          value >= 100 ? String.format(Locale.ROOT, "%.0f", value) : String.format(Locale.ROOT, "%.2f", value)));
    }
    // Time ticks every tenth of the run.
    for (int k = 0; k <= 10; k++) {
      double seconds = span * k / 10;
      svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%.0f s</text>%n",
          x(seconds, span), top + PANEL + 14, seconds));
    }
    for (Map.Entry<String, List<Point>> curve : curves.entrySet()) {
      String stroke = colours.get(curve.getKey());
      svg.append("<polyline fill=\"none\" stroke=\"").append(stroke).append("\" stroke-width=\"1.5\" points=\"");
      Point last = null;
      for (Point pt : curve.getValue()) {
        double y = top + PANEL - PANEL * pt.value() / max;
        if (stepped && last != null) {
          svg.append(String.format(Locale.ROOT, "%.1f,%.1f ", x(pt.seconds(), span), top + PANEL - PANEL * last.value() / max));
        }
        svg.append(String.format(Locale.ROOT, "%.1f,%.1f ", x(pt.seconds(), span), y));
        last = pt;
      }
      svg.append("\"/>\n");
    }
  }

  private static void faults(StringBuilder svg, List<Observation> ordered, long start, double span, int height) {
    Map<Integer, Long> ends = new LinkedHashMap<>();
    ordered.stream().filter(FaultEnded.class::isInstance).map(FaultEnded.class::cast)
        .forEach(f -> ends.put(f.fault(), f.atMillis()));
    for (Observation o : ordered) {
      if (!(o instanceof FaultStarted f)) {
        continue;
      }
      double from = x((f.atMillis() - start) / 1000.0, span);
      String colour = colour(f.kind());
      Long until = ends.get(f.fault());
      if (until != null) {
        double to = x((until - start) / 1000.0, span);
        svg.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
            + "fill-opacity=\"0.12\"/>%n", from, TOP, Math.max(1, to - from), height - TOP - 30, colour));
      }
      svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
          + "stroke-width=\"1\"><title>%s</title></line>%n", from, TOP - 12, from, height - 30, colour,
          escape("fault " + f.fault() + ": " + f.kind() + " " + f.target() + " " + f.detail())));
      svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" font-size=\"9\" fill=\"%s\" text-anchor=\"middle\">%d</text>%n",
          from, TOP - 14, colour, f.fault()));
    }
  }

  /** A tick under the world-size panel where a generation formed. */
  private static void generations(StringBuilder svg, List<Observation> ordered, long start, double span) {
    int bottom = panelTop(1) + PANEL;
    for (Observation o : ordered) {
      if (o instanceof GenerationFormed g && g.generation() > 1) {
        double at = x((g.atMillis() - start) / 1000.0, span);
        svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" "
            + "stroke-width=\"2\"><title>%s</title></line>%n", at, bottom - 10, at, bottom,
            escape(g.jobId() + " generation " + g.generation() + " (" + g.reason() + ") from " + g.stateSource())));
      }
    }
  }

  private static void legend(StringBuilder svg, Iterable<String> jobs, List<String> kinds, int height) {
    int x = LEFT;
    int colour = 0;
    for (String job : jobs) {
      if (colour >= JOB_COLOURS.length) {
        break; // colours repeat after six jobs; the legend names the first six
      }
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>%n", x, height - 8,
          JOB_COLOURS[colour++], escape(job)));
      x += 7 * job.length() + 16;
    }
    x = Math.max(x + 20, WIDTH / 2);
    for (String kind : kinds) {
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"%s\">| %s</text>%n", x, height - 8,
          colour(kind), kind));
      x += 7 * kind.length() + 20;
    }
  }

  /**
   * A fault kind's colour: process faults red and orange, storage purple, damaged data green,
   * lost or late data blue, the rest grey-blue.
   */
  static String colour(String kind) {
    return switch (kind) {
      case "kill" -> "#d62728";
      case "hang" -> "#ff7f0e";
      case "stop" -> "#e377c2";
      case "cassandra-kill", "cassandra-stop", "checkpoint-write-failure" -> "#7b1fa2";
      case "chunk-corrupt", "poison-nan", "poison-large" -> "#2e7d32";
      case "chunk-drop", "chunk-delay", "slow-rank" -> "#1565c0";
      default -> "#546e7a";
    };
  }

  private static String escape(String text) {
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
