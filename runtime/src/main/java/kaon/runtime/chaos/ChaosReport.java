package kaon.runtime.chaos;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Verdict.FaultTiming;
import kaon.runtime.chaos.Verdict.Finding;

/**
 * A chaos run's {@code report.md}: the verdict per invariant with its evidence, each fault's
 * effect, the time to resume per kind of fault (p50, p99), and the effective training time.
 */
public final class ChaosReport {

  private ChaosReport() {}

  /** The time to resume of one kind of fault: how many resumed, and the p50 and p99 in seconds. */
  public record ResumeTimes(String kind, int faults, int resumed, double p50Seconds, double p99Seconds) {}

  /** Resume times by fault kind, over the faults after which training resumed. */
  public static List<ResumeTimes> resumeTimes(List<FaultTiming> timings) {
    Map<String, List<Long>> byKind = new LinkedHashMap<>();
    Map<String, Integer> counts = new LinkedHashMap<>();
    for (FaultTiming t : timings) {
      counts.merge(t.kind(), 1, Integer::sum);
      List<Long> times = byKind.computeIfAbsent(t.kind(), k -> new ArrayList<>());
      if (t.resumeMillis() >= 0) {
        times.add(t.resumeMillis());
      }
    }
    List<ResumeTimes> out = new ArrayList<>();
    for (Map.Entry<String, Integer> e : counts.entrySet()) {
      List<Long> times = byKind.get(e.getKey());
      times.sort(Comparator.naturalOrder());
      out.add(new ResumeTimes(e.getKey(), e.getValue(), times.size(), percentile(times, 0.50) / 1000.0,
          percentile(times, 0.99) / 1000.0));
    }
    return out;
  }

  /** The nearest-rank percentile of sorted values, or NaN for none. */
  static double percentile(List<Long> sorted, double p) {
    if (sorted.isEmpty()) {
      return Double.NaN;
    }
    int rank = (int) Math.ceil(p * sorted.size());
    return sorted.get(Math.max(0, rank - 1));
  }

  /**
   * Longest pause between two steps seen that still counts as training: the recorder samples every
   * second, and a step of the slowest job here takes well under one.
   */
  static final long STALL_MILLIS = 5_000;

  /**
   * The share of the wall time in which training went on: the time from the first submission to
   * the last end, less the union of the spans from each fault that a job noticed (it re-formed or
   * reported ill health) until the job trained again, and of every stall: a job seen at the same
   * step for longer than {@value #STALL_MILLIS} ms after its first step, from the last step it was
   * seen to advance to the next (re-formations that fail one after another long after the fault
   * that started them, which its own span does not cover). NaN for a history with no job.
   */
  public static double effectiveTrainingRatio(List<Observation> history, List<FaultTiming> timings) {
    long start = history.stream().filter(Observation.JobSubmitted.class::isInstance).mapToLong(Observation::atMillis)
        .min().orElse(-1);
    long end = history.stream().filter(Observation.JobEnded.class::isInstance).mapToLong(Observation::atMillis)
        .max().orElse(-1);
    if (start < 0 || end <= start) {
      return Double.NaN;
    }
    Map<Integer, Long> faultAt = new LinkedHashMap<>();
    history.stream().filter(FaultStarted.class::isInstance).map(FaultStarted.class::cast)
        .forEach(f -> faultAt.put(f.fault(), f.atMillis()));
    List<long[]> down = new ArrayList<>();
    for (FaultTiming t : timings) {
      if (t.detectMillis() >= 0) {
        long from = faultAt.get(t.fault());
        long until = t.resumeMillis() >= 0 ? from + t.resumeMillis() : end;
        down.add(new long[] {Math.max(from, start), Math.min(until, end)});
      }
    }
    down.addAll(stalls(history));
    down.sort(Comparator.comparingLong(span -> span[0]));
    long lost = 0;
    long reach = start;
    for (long[] span : down) {
      long from = Math.max(span[0], reach);
      if (span[1] > from) {
        lost += span[1] - from;
        reach = span[1];
      }
    }
    return 1.0 - (double) lost / (end - start);
  }

  /** Per job, the spans between two advances of its steps seen longer than the stall limit. */
  static List<long[]> stalls(List<Observation> history) {
    Map<String, List<Observation.StepsSeen>> byJob = new LinkedHashMap<>();
    history.stream().filter(Observation.StepsSeen.class::isInstance).map(Observation.StepsSeen.class::cast)
        .sorted(Comparator.comparingLong(Observation::atMillis))
        .forEach(s -> byJob.computeIfAbsent(s.jobId(), j -> new ArrayList<>()).add(s));
    List<long[]> stalls = new ArrayList<>();
    for (List<Observation.StepsSeen> steps : byJob.values()) {
      long lastAdvance = -1;
      long highest = -1;
      for (Observation.StepsSeen s : steps) {
        if (s.step() > highest) {
          if (lastAdvance >= 0 && highest > 0 && s.atMillis() - lastAdvance > STALL_MILLIS) {
            stalls.add(new long[] {lastAdvance, s.atMillis()});
          }
          highest = s.step();
          lastAdvance = s.atMillis();
        }
      }
    }
    return stalls;
  }

  /**
   * The verdict in a few lines for a terminal: the resume times per fault kind, the effective
   * training time, each invariant held or violated (with the violations), and a last line that
   * says whether every invariant held.
   */
  public static List<String> summary(List<Observation> history, Verdict verdict) {
    List<String> lines = new ArrayList<>();
    for (ResumeTimes r : resumeTimes(verdict.timings())) {
      lines.add(String.format(Locale.ROOT, "time until training went on after %s: p50 %.1f s, p99 %.1f s (%d of %d on jobs)",
          r.kind(), r.p50Seconds(), r.p99Seconds(), r.resumed(), r.faults()));
    }
    lines.add(String.format(Locale.ROOT, "effective training time: %.1f%% of the wall time",
        100 * effectiveTrainingRatio(history, verdict.timings())));
    for (Finding f : verdict.findings()) {
      lines.add((f.held() ? "held:     " : "VIOLATED: ") + f.invariant().meaning());
      if (!f.held()) {
        f.evidence().forEach(line -> lines.add("  " + line));
      }
    }
    lines.add(verdict.held() ? "every invariant held"
        : verdict.findings().stream().filter(f -> !f.held()).count() + " invariant(s) violated");
    return lines;
  }

  /** Writes the run's {@code report.md} and {@code timeline.svg} into {@code dir}; returns the report's path. */
  public static Path write(Path dir, String title, List<Observation> history, Verdict verdict) throws IOException {
    return write(dir, title, history, verdict, List.of());
  }

  /**
   * The same, with the problems of the run itself (a rule that never fired, a fault that could not
   * be applied): they fail the run as a broken invariant does, and the report says so.
   */
  public static Path write(Path dir, String title, List<Observation> history, Verdict verdict, List<String> problems)
      throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("timeline.svg"), TimelineSvg.draw(title, history));
    return Files.writeString(dir.resolve("report.md"), markdown(title, history, verdict, problems));
  }

  /** The report's text. */
  public static String markdown(String title, List<Observation> history, Verdict verdict, List<String> problems) {
    StringBuilder md = new StringBuilder();
    md.append("# ").append(title).append("\n\n");
    md.append("![timeline: steps, world size, samples/s and loss, with each fault](timeline.svg)\n\n");
    long broken = verdict.findings().stream().filter(f -> !f.held()).count();
    md.append(broken == 0 ? "**Every invariant held.**" : "**" + broken + " invariant(s) broken.**").append("\n\n");
    if (!problems.isEmpty()) {
      md.append("**The run itself had problems** (it fails for them):\n\n");
      problems.forEach(p -> md.append("- ").append(p).append('\n'));
      md.append('\n');
    }
    md.append("| invariant | held | evidence |\n|---|---|---|\n");
    for (Finding f : verdict.findings()) {
      md.append("| ").append(f.invariant().name().toLowerCase(Locale.ROOT).replace('_', ' ')).append(": ")
          .append(f.invariant().meaning()).append(" | ").append(f.held() ? "yes" : "**NO**").append(" | ")
          .append(cell(String.join("; ", f.evidence()))).append(" |\n");
    }
    md.append("\n## Faults\n\n");
    if (verdict.timings().isEmpty()) {
      md.append("No fault struck a running job.\n");
    } else {
      md.append("| # | kind | target | job | effect | detected after (s) | trained again after (s) | steps replayed |\n");
      md.append("|---|---|---|---|---|---|---|---|\n");
      for (FaultTiming t : verdict.timings()) {
        md.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %s | %s | %s | %s |%n", t.fault(), t.kind(),
            cell(t.target()), t.jobId(), cell(t.effect()), seconds(t.detectMillis()), seconds(t.resumeMillis()),
            t.stepsReplayed() < 0 ? "-" : Long.toString(t.stepsReplayed())));
      }
      md.append("\n## Time until training went on, per kind of fault\n\n| kind | faults | resumed | p50 (s) | p99 (s) |\n");
      md.append("|---|---|---|---|---|\n");
      for (ResumeTimes r : resumeTimes(verdict.timings())) {
        md.append(String.format(Locale.ROOT, "| %s | %d | %d | %.1f | %.1f |%n", r.kind(), r.faults(), r.resumed(),
            r.p50Seconds(), r.p99Seconds()));
      }
    }
    md.append(String.format(Locale.ROOT, "%nEffective training time: %.1f%% of the wall time.%n",
        100 * effectiveTrainingRatio(history, verdict.timings())));
    return md.toString();
  }

  private static String seconds(long millis) {
    return millis < 0 ? "-" : String.format(Locale.ROOT, "%.1f", millis / 1000.0);
  }

  private static String cell(String text) {
    return text.replace("|", "\\|").replace("\n", " ");
  }
}
