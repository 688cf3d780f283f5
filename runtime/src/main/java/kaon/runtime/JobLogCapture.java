package kaon.runtime;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;
import kaon.actors.joblog.JobLog;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.slf4j.Marker;
import org.slf4j.helpers.MessageFormatter;

/**
 * Feeds a node's {@link JobLog} from its logging: every line at INFO or above of Kaon's own
 * loggers ({@code kaon.*}, and the actors' classes in it) that belongs to a job. It looks at each
 * logging call before the level decides whether the line is printed, so the job log keeps a job's
 * INFO lines (its generations, say) on a node that prints only warnings; what the node prints does
 * not change.
 */
final class JobLogCapture extends TurboFilter {

  /** Per rank and epoch, for bench/step-profile: figures, not the job's story. */
  private static final String STEP_PROFILE = "kaon.step-profile";

  private final JobLog log;

  private JobLogCapture(JobLog log) {
    this.log = log;
  }

  /** Starts feeding {@code log} from this JVM's logging; once per JVM is enough. */
  static synchronized void install(JobLog log) {
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context
        && context.getTurboFilterList().stream().noneMatch(f -> f instanceof JobLogCapture)) {
      JobLogCapture capture = new JobLogCapture(log);
      capture.setName("kaon-job-log");
      capture.start();
      context.addTurboFilter(capture);
    }
  }

  @Override
  public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params, Throwable t) {
    if (level == null || !level.isGreaterOrEqual(Level.INFO) || !logger.getName().startsWith("kaon.")
        || logger.getName().equals(STEP_PROFILE)) {
      return FilterReply.NEUTRAL;
    }
    String contextJob = MDC.get(JobLog.CONTEXT_KEY);
    // A job's lines start with its id: most lines are not a job's, and are left at the cheap check.
    if (contextJob == null && (format == null || !(format.startsWith("job ") || format.startsWith("{}")))) {
      return FilterReply.NEUTRAL;
    }
    var formatted = MessageFormatter.arrayFormat(format, params, t);
    String message = formatted.getMessage();
    String job = JobLog.jobOf(contextJob, message);
    // No message: a level check (isInfoEnabled) or a fluent call whose text comes later.
    if (job != null && message != null && !message.isEmpty()) {
      Throwable cause = t != null ? t : formatted.getThrowable();
      log.add(job, System.currentTimeMillis(), level.toString(), shortName(logger.getName()),
          cause == null ? message : message + ": " + causes(cause));
    }
    return FilterReply.NEUTRAL;
  }

  /** The exception and its causes in one line: what went wrong, without the stack. */
  static String causes(Throwable t) {
    StringBuilder out = new StringBuilder(t.toString());
    int depth = 0;
    for (Throwable c = t.getCause(); c != null && c != t && depth < 5; c = c.getCause(), depth++) {
      out.append("; caused by ").append(c);
    }
    return out.toString();
  }

  private static String shortName(String name) {
    int dot = name.lastIndexOf('.');
    return dot < 0 ? name : name.substring(dot + 1);
  }
}
