package kaon.runtime;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.filter.ThresholdFilter;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.rolling.FixedWindowRollingPolicy;
import ch.qos.logback.core.rolling.RollingFileAppender;
import ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy;
import ch.qos.logback.core.util.FileSize;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;

/**
 * The node's log file in {@code kaon.node.log-dir} (install.sh sets {@code /var/log/kaon}), beside
 * the standard error that the unit's journal keeps: {@code node.log}, rolled over at 50 MB into
 * five compressed files, so a VM's disk never fills with logs. The file takes INFO and up (what
 * an operator reads after the fact: joins, downings, generations), or the console's level where
 * that is lower; the console keeps its own ({@code KAON_LOG_LEVEL}, WARN by default).
 */
final class NodeLogFile {

  static final String FILE = "node.log";
  private static final String MAX_FILE_SIZE = "50MB";
  private static final int KEPT_FILES = 5;

  private NodeLogFile() {}

  /**
   * Adds the file to the root logger.
   *
   * @return null, or why the node logs to standard error only (the directory is not writable)
   */
  static String attach(Path dir) {
    if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
      return "kaon.node.log-dir " + dir + " is not a writable directory; logging to standard error only";
    }
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    // The date too: the file outlives a day, the console's lines are stamped by the journal.
    encoder.setPattern("%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level %logger{30} - %msg%n");
    encoder.start();
    RollingFileAppender<ILoggingEvent> appender = new RollingFileAppender<>();
    appender.setContext(context);
    appender.setName("kaon-node-file");
    appender.setFile(dir.resolve(FILE).toString());
    appender.setEncoder(encoder);
    FixedWindowRollingPolicy rolling = new FixedWindowRollingPolicy();
    rolling.setContext(context);
    rolling.setParent(appender);
    rolling.setFileNamePattern(dir.resolve("node.%i.log.gz").toString());
    rolling.setMinIndex(1);
    rolling.setMaxIndex(KEPT_FILES);
    rolling.start();
    SizeBasedTriggeringPolicy<ILoggingEvent> trigger = new SizeBasedTriggeringPolicy<>();
    trigger.setContext(context);
    trigger.setMaxFileSize(FileSize.valueOf(MAX_FILE_SIZE));
    trigger.start();
    appender.setRollingPolicy(rolling);
    appender.setTriggeringPolicy(trigger);
    appender.start();
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    Level console = root.getLevel();
    if (console != null && console.isGreaterOrEqual(Level.INFO) && console != Level.INFO) {
      // The root level lets INFO through for the file; the console appenders filter it out again.
      root.iteratorForAppenders().forEachRemaining(existing -> {
        ThresholdFilter filter = new ThresholdFilter();
        filter.setContext(context);
        filter.setLevel(console.toString());
        filter.start();
        existing.addFilter(filter);
      });
      root.setLevel(Level.INFO);
    }
    root.addAppender(appender);
    return null;
  }
}
