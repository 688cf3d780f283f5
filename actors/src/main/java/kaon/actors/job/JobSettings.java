package kaon.actors.job;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * How job coordinators behave; read once from {@code kaon.job} (every key is explained there).
 *
 * @param reattachTimeout how long a recovered coordinator waits for its ranks to say they still
 *     train before it forms a new generation
 * @param censusTimeout how long a device census waits for a node's agent at most (500 ms caps it)
 * @param stateAnswerTimeout how long a member of a generation that ends may take to say which
 *     state it holds
 * @param deviceWaitInterval how often a job below its minimum of devices surveys again
 * @param checkpointReadRetryMax longest delay between attempts to read checkpoints while the
 *     store does not answer (the first is {@code persistRetryMin}, doubling)
 * @param prepareResendInterval how often ranks of a forming generation that are not ready are
 *     asked again
 * @param prepareAttempts how many times they are asked again before the job forms without them
 * @param failuresBeforeGiveUp generations in a row that may fail without progress before the job
 *     fails
 * @param reformBackoffMin the base of the backoff between re-formations in a row: the n-th waits
 *     reformBackoffMin x 2^(n-1) (the first waits not at all)
 * @param reformBackoffMax the longest wait between re-formations, which double up to it
 * @param persistRetryMin first delay before probing an unreachable journal again (the write gate,
 *     and the host of a coordinator that stopped)
 * @param persistRetryMax longest delay between such probes
 * @param journalSession config path of the journal's Cassandra session (the journal plugin's
 *     path without its {@code .journal}), which the journal gate probes before persisting
 * @param growLookInterval how often a job below its maximum of workers looks for free devices
 * @param growAfterJoinInterval how often it looks after a node joined
 * @param growAfterJoinLooks how many such looks a join is worth
 * @param leaseConfigPath config path of the lease each job's entity takes ({@code kaon.job.lease}),
 *     empty for none
 * @param leaseRetryInterval how often a job that could not take its lease tries again
 * @param snapshotEvery events between snapshots of a job's state
 * @param recoveryTimeout how long a coordinator may take to recover before its host stops it and
 *     starts it again
 */
public record JobSettings(
    Duration reattachTimeout,
    Duration censusTimeout,
    Duration stateAnswerTimeout,
    Duration deviceWaitInterval,
    Duration checkpointReadRetryMax,
    Duration prepareResendInterval,
    int prepareAttempts,
    int failuresBeforeGiveUp,
    Duration reformBackoffMin,
    Duration reformBackoffMax,
    Duration persistRetryMin,
    Duration persistRetryMax,
    String journalSession,
    Duration growLookInterval,
    Duration growAfterJoinInterval,
    int growAfterJoinLooks,
    String leaseConfigPath,
    Duration leaseRetryInterval,
    int snapshotEvery,
    Duration recoveryTimeout) {

  public JobSettings {
    if (prepareAttempts < 1 || failuresBeforeGiveUp < 1 || growAfterJoinLooks < 0) {
      throw new IllegalArgumentException(
          "kaon.job prepare-attempts and failures-before-give-up must be at least 1, grow-after-join-looks not negative");
    }
    if (snapshotEvery < 1) {
      throw new IllegalArgumentException("kaon.job.snapshot-every must be at least 1, was " + snapshotEvery);
    }
  }

  /**
   * The settings under {@code job} (the {@code kaon.job} section) for journal plugin {@code
   * journalPlugin} ({@code pekko.persistence.journal.plugin}).
   */
  public static JobSettings fromConfig(Config job, String journalPlugin) {
    return new JobSettings(
        job.getDuration("reattach-timeout"),
        job.getDuration("census-timeout"),
        job.getDuration("state-answer-timeout"),
        job.getDuration("device-wait-interval"),
        job.getDuration("checkpoint-read-retry-max"),
        job.getDuration("prepare-resend-interval"),
        job.getInt("prepare-attempts"),
        job.getInt("failures-before-give-up"),
        job.getDuration("reform-backoff-min"),
        job.getDuration("reform-backoff-max"),
        job.getDuration("persist-retry-min"),
        job.getDuration("persist-retry-max"),
        sessionOfJournal(journalPlugin),
        job.getDuration("grow-look-interval"),
        job.getDuration("grow-after-join-interval"),
        job.getInt("grow-after-join-looks"),
        job.getBoolean("fencing") ? "kaon.job.lease" : "",
        job.getDuration("lease-retry-interval"),
        job.getInt("snapshot-every"),
        job.getDuration("recovery-timeout"));
  }

  /** The session path of journal plugin {@code journalPlugin} ({@code pekko.persistence.journal.plugin}). */
  public static String sessionOfJournal(String journalPlugin) {
    return journalPlugin.endsWith(".journal") ? journalPlugin.substring(0, journalPlugin.length() - ".journal".length()) : journalPlugin;
  }
}
