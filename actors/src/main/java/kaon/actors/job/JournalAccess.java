package kaon.actors.job;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.slf4j.Logger;

/**
 * The coordinator's part that decides when it may write its journal. Events of training wait in
 * the {@link JournalGate} until a probe has confirmed the job's lease and reached the journal. An
 * owner's command finds the lease held but its last confirmation old (a slow renewal on a busy
 * Cassandra) and waits for one confirmation rather than be refused. A lease seen taken by another
 * owner fences the coordinator: it writes and acts no more, and its host stops it.
 *
 * <p>Runs on the coordinator's thread, inside its command handlers.
 */
final class JournalAccess {

  /** What the coordinator gives this part. */
  interface Port {
    void setHealth(JobState state, JobHealth.Problem problem, String words);

    /** Fenced: form, launch and time nothing more. */
    void stopActing();

    /** {@code events}, released by a probe, are persisted; {@code wasDown}: the journal had been unreachable. */
    void released(JobState state, List<JobEvent> events, boolean wasDown);

    /** Hands {@code probe}'s outcome to {@link #onProbed} on the coordinator's thread. */
    void whenProbed(CompletionStage<?> probe);

    /** Calls {@link #probe} after {@code delay}. */
    void probeAfter(Duration delay);

    /** Hands {@code confirmation}'s outcome to {@link #onLeaseChecked} on the coordinator's thread. */
    void whenLeaseChecked(CompletionStage<?> confirmation);
  }

  /** How long after a confirmation of the lease answered an owner's command is refused rather than wait again. */
  private static final Duration LEASE_ANSWER_FRESH = Duration.ofSeconds(1);

  private final String jobId;
  private final Logger log;
  private final JobEffects effects;
  private final JournalGate gate;
  private final JobHealth health;
  private final LongSupplier lastSequenceNr;
  private final Port port;
  private final EffectFactories<JobEvent, JobState> effect;
  /** A confirmation of the lease for owner commands is under way. */
  private boolean leaseChecking;
  private long leaseAnsweredAt = System.nanoTime() - Duration.ofHours(1).toNanos();

  JournalAccess(String jobId, Logger log, JobEffects effects, JournalGate gate, JobHealth health, LongSupplier lastSequenceNr, Port port,
      EffectFactories<JobEvent, JobState> effect) {
    this.jobId = jobId;
    this.log = log;
    this.effects = effects;
    this.gate = gate;
    this.health = health;
    this.lastSequenceNr = lastSequenceNr;
    this.port = port;
    this.effect = effect;
  }

  /** Holds {@code event} until the journal is reachable and the lease confirmed; then persists it and runs {@code after}. */
  ReplyEffect<JobEvent, JobState> persistWhenReachable(JobEvent event, Consumer<JobState> after) {
    gate.hold(event, after);
    return probe();
  }

  ReplyEffect<JobEvent, JobState> probe() {
    if (gate.startProbe()) {
      long last = lastSequenceNr.getAsLong();
      // Reading the last event back proves the journal's session answers too; before the first
      // event there is nothing to read, so a trivial query proves it.
      port.whenProbed(effects.confirmLease()
          .thenCompose(x -> last > 0 ? effects.eventDurable(last) : effects.pingJournal().thenApply(y -> true))
          .thenApply(durable -> {
            if (!durable) {
              throw new JobEffects.LostEventException("the journal lost event " + last
                  + " (Cassandra came back without a write it had acknowledged)");
            }
            return durable;
          }));
    }
    return effect.noReply();
  }

  ReplyEffect<JobEvent, JobState> onProbed(JobState state, Throwable probeError) {
    Throwable error = cause(probeError);
    if (error instanceof JobEffects.LeaseLostException) {
      fence(state, error.getMessage());
      return effect.noReply();
    }
    if (error instanceof JobEffects.LostEventException) {
      // Written after the gap, events could never be read back. This coordinator stops; its host
      // starts it again, it recovers from what the journal holds, and the workers resend what
      // they have not had acknowledged. (What was acknowledged and then lost stays lost.)
      log.warn("job {}: {}; recovering from the journal", jobId, error.getMessage());
      return effect.stop().thenNoReply();
    }
    if (error != null) {
      JournalGate.Retry retry = gate.failed(error.getMessage(), System.currentTimeMillis());
      port.setHealth(state, JobHealth.Problem.JOURNAL, retry.health());
      port.probeAfter(retry.delay());
      return effect.noReply();
    }
    boolean wasDown = health.clear(JobHealth.Problem.JOURNAL);
    JournalGate.Release release = gate.release();
    if (release.events().isEmpty()) {
      return effect.noReply();
    }
    return effect
        .persist(release.events())
        .thenRun(s -> release.afters().forEach(after -> after.accept(s)))
        .thenRun(s -> port.released(s, release.events(), wasDown))
        .thenNoReply();
  }

  /** Why the coordinator may not write now, or null. */
  String writeProblem() {
    if (gate.fenced() != null) {
      return "job " + jobId + ": " + gate.fenced();
    }
    if (health.has(JobHealth.Problem.JOURNAL)) {
      return "job " + jobId + ": " + health.get(JobHealth.Problem.JOURNAL) + "; retry";
    }
    return effects.leaseUnconfirmed() ? "job " + jobId + ": its lease is not confirmed (Cassandra unreachable); retry" : null;
  }

  /** See {@link OwnerCommands.Port#confirmLeaseFirst}. */
  boolean confirmLeaseFirst() {
    if (gate.fenced() != null || health.has(JobHealth.Problem.JOURNAL) || !effects.leaseUnconfirmed()
        || System.nanoTime() - leaseAnsweredAt < LEASE_ANSWER_FRESH.toNanos()) {
      return false;
    }
    if (!leaseChecking) {
      leaseChecking = true;
      port.whenLeaseChecked(effects.confirmLease());
    }
    return true;
  }

  /** The lease was confirmed again, or not: the owner's commands that waited for it are handled now. */
  ReplyEffect<JobEvent, JobState> onLeaseChecked(JobState state, Throwable checkError) {
    leaseChecking = false;
    leaseAnsweredAt = System.nanoTime();
    if (cause(checkError) instanceof JobEffects.LeaseLostException lost) {
      fence(state, lost.getMessage());
    }
    return effect.noReply().thenUnstashAll();
  }

  /**
   * Fenced: another coordinator runs this job, and its generation fences our workers out. The
   * host stops this one (the lease's callback); until then it acts no more.
   */
  private void fence(JobState state, String why) {
    log.warn("job {}: {}; this coordinator stops acting", jobId, why);
    gate.fence(why);
    port.stopActing();
    port.setHealth(state, JobHealth.Problem.JOURNAL, why);
  }

  private static Throwable cause(Throwable error) {
    return error instanceof CompletionException c && c.getCause() != null ? c.getCause() : error;
  }
}
