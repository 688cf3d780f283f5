package kaon.actors.joblog;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The log lines of this JVM that belong to a job, kept in memory per job for {@code kaon logs}:
 * what the job's coordinator and its ranks on this node said about it (generations, faults,
 * warnings, errors with their cause). A line belongs to a job when it was logged with the job in
 * the logging context ({@link #CONTEXT_KEY}), or when it names the job the way Kaon's own lines do:
 * "job ID ..." from the coordinator's side, "ID-worker-N: ..." from a worker.
 *
 * <p>Bounded twice: the newest {@code linesPerJob} lines of each of the newest {@code jobs} jobs,
 * so that a node that runs for months holds a few MB at most. Each line gets a number, increasing
 * in this JVM, that a reader passes back to get only newer lines.
 */
public final class JobLog {

  /** The logging context (MDC) key that names the job of a thread's lines. */
  public static final String CONTEXT_KEY = "kaonJob";

  private static final Pattern COORDINATOR_LINE = Pattern.compile("^job ([A-Za-z0-9][A-Za-z0-9._-]{0,63})[ :]");
  private static final Pattern WORKER_LINE = Pattern.compile("^([A-Za-z0-9][A-Za-z0-9._-]{0,63})-worker-\\d+[ :]");

  private static final JobLog JVM = new JobLog(64, 2000);

  /**
   * One line.
   *
   * @param number increasing in this JVM: a reader asks for lines after the last it saw
   * @param atMillis when it was logged (epoch ms)
   * @param level ERROR, WARN, INFO, ...
   * @param logger the logging class or actor, shortened
   * @param message the formatted message, with its exception's cause chain when there was one
   */
  public record Line(long number, long atMillis, String level, String logger, String message)
      implements kaon.protocol.KryoWireMessage {}

  private final int jobs;
  private final int linesPerJob;
  private final Map<String, Deque<Line>> byJob;
  private long next = 1;

  JobLog(int jobs, int linesPerJob) {
    this.jobs = jobs;
    this.linesPerJob = linesPerJob;
    // Access order: the job logged to least recently goes first when there are too many.
    this.byJob = new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<String, Deque<Line>> eldest) {
        return size() > JobLog.this.jobs;
      }
    };
  }

  /** This JVM's job log, which the node's logging feeds and its {@link JobLogServer} reads. */
  public static JobLog jvm() {
    return JVM;
  }

  /**
   * The job a line is about: {@code contextJob} when the thread named one, else the job its
   * message names, else null (not a job's line).
   */
  public static String jobOf(String contextJob, String message) {
    if (contextJob != null && !contextJob.isEmpty()) {
      return contextJob;
    }
    if (message == null) {
      return null;
    }
    Matcher m = COORDINATOR_LINE.matcher(message);
    if (m.find()) {
      return m.group(1);
    }
    m = WORKER_LINE.matcher(message);
    return m.find() ? m.group(1) : null;
  }

  /** Keeps a line of {@code jobId}. */
  public synchronized void add(String jobId, long atMillis, String level, String logger, String message) {
    Deque<Line> lines = byJob.computeIfAbsent(jobId, id -> new ArrayDeque<>());
    lines.addLast(new Line(next++, atMillis, level, logger, message));
    if (lines.size() > linesPerJob) {
      lines.removeFirst();
    }
  }

  /** The kept lines of {@code jobId} numbered above {@code after}, oldest first. */
  public synchronized List<Line> after(String jobId, long after) {
    Deque<Line> lines = byJob.get(jobId);
    if (lines == null) {
      return List.of();
    }
    List<Line> out = new ArrayList<>();
    for (var it = lines.descendingIterator(); it.hasNext();) {
      Line line = it.next();
      if (line.number() <= after) {
        break;
      }
      out.add(line);
    }
    java.util.Collections.reverse(out);
    return out;
  }
}
