package kaon.actors.job;

import java.time.Duration;

/**
 * How job coordinators behave; read once from {@code kaon.job}.
 *
 * @param reattachTimeout how long a recovered coordinator waits for its ranks to say they still
 *     train before it starts a new generation from the last checkpoint
 * @param persistRetryMin first delay before probing an unreachable journal again (the write gate,
 *     and the host of a coordinator that stopped)
 * @param persistRetryMax longest delay between such probes
 * @param journalSession config path of the journal's Cassandra session (the journal plugin's
 *     path without its {@code .journal}), which the journal gate probes before persisting
 * @param growLookInterval how often a job below its maximum of workers looks for free devices
 * @param leaseConfigPath config path of the lease each job's entity takes ({@code kaon.job.lease}),
 *     empty for none
 * @param leaseRetryInterval how often a job that could not take its lease tries again
 */
public record JobSettings(
    Duration reattachTimeout, Duration persistRetryMin, Duration persistRetryMax, String journalSession,
    Duration growLookInterval, String leaseConfigPath, Duration leaseRetryInterval) {

  /** Settings without a lease: coordinators that run outside sharding (tests of one coordinator). */
  public JobSettings(Duration reattachTimeout, Duration persistRetryMin, Duration persistRetryMax, String journalSession,
      Duration growLookInterval) {
    this(reattachTimeout, persistRetryMin, persistRetryMax, journalSession, growLookInterval, "", Duration.ofSeconds(1));
  }

  /** The session path of journal plugin {@code journalPlugin} ({@code pekko.persistence.journal.plugin}). */
  public static String sessionOfJournal(String journalPlugin) {
    return journalPlugin.endsWith(".journal") ? journalPlugin.substring(0, journalPlugin.length() - ".journal".length()) : journalPlugin;
  }
}
