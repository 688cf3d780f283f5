package kaon.actors.job;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Events that wait for the journal to answer, and what to do once they are persisted. Results of
 * training and new generations are held here rather than persisted blindly: a write to an
 * unreachable Cassandra would stop the coordinator until Cassandra is back. They are written only
 * after a probe confirmed the job's lease and reached the journal; the reports they came from stay
 * unacknowledged meanwhile, so their senders keep them.
 *
 * <p>Plain state of one coordinator (no actor): the coordinator runs the probes and persists what
 * {@link #release} hands it.
 */
final class JournalGate {

  private final Duration retryMin;
  private final Duration retryMax;
  private final List<JobEvent> waiting = new ArrayList<>();
  private final List<Consumer<JobState>> afters = new ArrayList<>();
  private boolean probing;
  /** Why this coordinator no longer writes (another one holds the job's lease), or null. */
  private String fenced;
  private Duration delay;
  private long downSince;

  JournalGate(Duration retryMin, Duration retryMax) {
    this.retryMin = retryMin;
    this.retryMax = retryMax;
  }

  /** Holds {@code event} and what to run once it is persisted. */
  void hold(JobEvent event, Consumer<JobState> after) {
    waiting.add(event);
    afters.add(after);
  }

  /** Whether a probe should start now; if so, it counts as started. */
  boolean startProbe() {
    if (probing || waiting.isEmpty() || fenced != null) {
      return false;
    }
    probing = true;
    return true;
  }

  /** Events ready to persist once a probe answered, with their continuations; the gate is empty after. */
  record Release(List<JobEvent> events, List<Consumer<JobState>> afters) {}

  /** The probe answered: everything that waited may be persisted. */
  Release release() {
    probing = false;
    delay = null;
    downSince = 0;
    Release r = new Release(List.copyOf(waiting), List.copyOf(afters));
    waiting.clear();
    afters.clear();
    return r;
  }

  /** The probe failed at {@code nowMillis}: how long until the next, and the words for the job's health. */
  record Retry(Duration delay, String health) {}

  Retry failed(String error, long nowMillis) {
    probing = false;
    if (downSince == 0) {
      downSince = nowMillis;
    }
    delay = delay == null ? retryMin : (delay.multipliedBy(2).compareTo(retryMax) <= 0 ? delay.multipliedBy(2) : retryMax);
    return new Retry(delay, "journal unavailable since " + Instant.ofEpochMilli(downSince) + " (" + error
        + "); training goes on and its results wait to be recorded");
  }

  /** Another coordinator holds the lease: what waited is dropped (its reports are the other's to record). */
  void fence(String why) {
    probing = false;
    fenced = why;
    waiting.clear();
    afters.clear();
  }

  /** Why this coordinator may no longer write, or null. */
  String fenced() {
    return fenced;
  }

  /** Results of the previous generation that never reached the journal: its successor redoes them. */
  void dropWaiting() {
    waiting.clear();
    afters.clear();
  }

  /** The job's end (success or failure) waits here. */
  boolean endWaiting() {
    return waiting.stream().anyMatch(e -> e instanceof JobEvent.JobSucceeded || e instanceof JobEvent.JobFailed);
  }

  /** 1-based epoch {@code epoch} waits here. */
  boolean holdsEpoch(int epoch) {
    return waiting.stream().anyMatch(e -> e instanceof JobEvent.EpochCompleted c && c.metrics().epoch() == epoch);
  }

  /** Checkpoint {@code id} waits here. */
  boolean holdsCheckpoint(String id) {
    return waiting.stream().anyMatch(e -> e instanceof JobEvent.CheckpointCommitted c && c.checkpoint().id().equals(id));
  }

  /** The epochs waiting here. */
  List<EpochMetrics> waitingEpochs() {
    List<EpochMetrics> epochs = new ArrayList<>();
    waiting.forEach(e -> {
      if (e instanceof JobEvent.EpochCompleted c) {
        epochs.add(c.metrics());
      }
    });
    return epochs;
  }
}
