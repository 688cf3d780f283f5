package kaon.actors.job;

import java.util.List;
import kaon.actors.training.JobSpec;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;

/**
 * The coordinator's part that answers the job's owner: submit, cancel and scale. Each answer is an
 * {@link OwnerReply}; a refusal names its kind. Commands that would write are refused while the
 * coordinator may not write (its journal is unreachable, its lease lost, or its lease unconfirmed
 * and not confirmed again at once): the client retries, and nothing is half done.
 *
 * <p>Runs on the coordinator's thread, inside its command handlers.
 */
final class OwnerCommands {

  /** What the coordinator gives this part. */
  interface Port {
    /** Why the coordinator may not write now, or null. */
    String writeProblem();

    /**
     * Whether a command that may not write should wait for the lease to be confirmed, rather than
     * be refused: the lease is held and only its last confirmation is old (a slow renewal on a
     * busy Cassandra), and no confirmation answered just now. If so, one is under way.
     */
    boolean confirmLeaseFirst();

    /** The size of {@code event} in the journal. */
    int serializedSize(JobEvent event);

    JobStatus status(JobState state);

    /** Whether this entity is leaving (it was started by asking about a job that does not exist). */
    boolean unloading();

    /** Asked about a job that does not exist: the entity leaves. */
    void unloadIfUnknown(JobState state);

    /** The job and its first generation are recorded: get that generation going. */
    void submitted(JobState.Active state);

    /** The job is recorded as cancelled. */
    void cancelled(JobState state);

    /** The job's bounds are recorded; {@code reason} for a new generation if its size must change. */
    void scaled(JobState.Active state, String reason);
  }

  /** Largest event the coordinator persists: above it Cassandra may refuse the write. */
  static final int MAX_EVENT_BYTES = 1 << 20;

  private final String jobId;
  private final Port port;
  private final EffectFactories<JobEvent, JobState> effect;

  OwnerCommands(String jobId, Port port, EffectFactories<JobEvent, JobState> effect) {
    this.jobId = jobId;
    this.port = port;
    this.effect = effect;
  }

  ReplyEffect<JobEvent, JobState> submit(JobSpec spec, ActorRef<OwnerReply> replyTo) {
    if (port.unloading()) {
      return refuse(replyTo, OwnerReply.Refusal.UNAVAILABLE, "job " + jobId + " is being unloaded; retry");
    }
    ReplyEffect<JobEvent, JobState> notNow = unlessWritable(replyTo);
    if (notNow != null) {
      return notNow;
    }
    JobEvent.JobSubmitted submitted = new JobEvent.JobSubmitted(spec, System.currentTimeMillis());
    int bytes = port.serializedSize(submitted);
    if (bytes > MAX_EVENT_BYTES) {
      return refuse(replyTo, OwnerReply.Refusal.INVALID_ARGUMENT,
          "the job spec is too large: its event would be " + bytes + " bytes, the limit is " + MAX_EVENT_BYTES);
    }
    return effect
        .persist(List.of(submitted, new JobEvent.GenerationStarted(1, spec.workers(), 0, "job submitted", StateSource.INIT,
            JobEvent.GenerationStarted.ranks(spec.workers()), submitted.atMillis())))
        .thenRun(s -> port.submitted((JobState.Active) s))
        .thenReply(replyTo, s -> new OwnerReply.Accepted(port.status(s)));
  }

  /** The same submission again (a retry, or a client re-attaching) is answered as the first time. */
  ReplyEffect<JobEvent, JobState> submitAgain(JobState state, JobSpec spec, ActorRef<OwnerReply> replyTo) {
    return sameSubmission(spec, JobState.courseOf(state).spec())
        ? effect.reply(replyTo, new OwnerReply.Accepted(port.status(state)))
        : refuse(replyTo, OwnerReply.Refusal.CONFLICT, "job " + jobId + " already exists with another spec");
  }

  ReplyEffect<JobEvent, JobState> cancel(ActorRef<OwnerReply> replyTo) {
    ReplyEffect<JobEvent, JobState> notNow = unlessWritable(replyTo);
    if (notNow != null) {
      return notNow;
    }
    return effect
        .persist(new JobEvent.JobCancelled(System.currentTimeMillis()))
        .thenRun(port::cancelled)
        .thenReply(replyTo, s -> new OwnerReply.Accepted(port.status(s)));
  }

  ReplyEffect<JobEvent, JobState> scale(JobState.Active state, int min, int max, ActorRef<OwnerReply> replyTo) {
    String invalid = state.scaleProblem(min, max);
    if (invalid != null) {
      return refuse(replyTo, OwnerReply.Refusal.INVALID_ARGUMENT, invalid);
    }
    ReplyEffect<JobEvent, JobState> notNow = unlessWritable(replyTo);
    if (notNow != null) {
      return notNow;
    }
    return effect
        .persist(new JobEvent.JobScaled(min, max))
        .thenRun(s -> port.scaled((JobState.Active) s, "scaled to " + min + ".." + max + " workers"))
        .thenReply(replyTo, s -> new OwnerReply.Accepted(port.status(s)));
  }

  /** A command for a job that does not exist. */
  ReplyEffect<JobEvent, JobState> unknown(JobState state, ActorRef<OwnerReply> replyTo) {
    port.unloadIfUnknown(state);
    return refuse(replyTo, OwnerReply.Refusal.NOT_FOUND, "job " + jobId + " does not exist");
  }

  /** A command that would change a job that ended. */
  ReplyEffect<JobEvent, JobState> ended(JobState state, ActorRef<OwnerReply> replyTo) {
    return refuse(replyTo, OwnerReply.Refusal.ENDED, "job " + jobId + " already ended: " + state.phase());
  }

  /**
   * Null if the command may write now; else it waits for the lease's confirmation (stashed, and
   * handled again once it answered) or is refused with the reason, and the client retries.
   */
  private ReplyEffect<JobEvent, JobState> unlessWritable(ActorRef<OwnerReply> replyTo) {
    String problem = port.writeProblem();
    if (problem == null) {
      return null;
    }
    return port.confirmLeaseFirst() ? effect.stash() : refuse(replyTo, OwnerReply.Refusal.UNAVAILABLE, problem);
  }

  private ReplyEffect<JobEvent, JobState> refuse(ActorRef<OwnerReply> replyTo, OwnerReply.Refusal refusal, String message) {
    return effect.reply(replyTo, new OwnerReply.Refused(refusal, message));
  }

  /**
   * Whether {@code again} is the submission that made {@code recorded}. The start size is left
   * out: it is resolved from the devices free at each attempt, and a retry after the job took
   * devices (or grew) must find the same job.
   */
  static boolean sameSubmission(JobSpec again, JobSpec recorded) {
    int inside = Math.max(again.minWorkers(), Math.min(again.maxWorkers(), recorded.workers()));
    return new JobSpec(again.task(), inside, again.minWorkers(), again.maxWorkers(), again.epochs(), again.globalBatch(),
        again.optimizer(), again.seed(), again.maxSteps(), again.modelOutput(), again.checkpointEverySteps()).equals(recorded);
  }
}
