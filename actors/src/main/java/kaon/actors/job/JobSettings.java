package kaon.actors.job;

import java.time.Duration;

/**
 * How job coordinators behave; read once from {@code kaon.job}.
 *
 * @param reattachTimeout how long a recovered coordinator waits for its ranks to say they still
 *     train before it starts a new generation from the last checkpoint
 * @param persistRetryMin first backoff after a failed journal write
 * @param persistRetryMax longest backoff between journal retries
 */
public record JobSettings(Duration reattachTimeout, Duration persistRetryMin, Duration persistRetryMax) {}
