package kaon.actors.job;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.function.BiFunction;
import kaon.actors.worker.WorkerReport;
import kaon.actors.lease.CassandraLease;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The job's sharded entity: it runs the event-sourced {@link JobCoordinator} as its child and
 * keeps the job answering while that child cannot run. A journal write that fails (Cassandra
 * stopped in the middle of it) stops the coordinator, and so does a recovery that fails; the host
 * then answers {@link JobCoordinator.GetStatus} and {@link JobCoordinator.Watch} with the last
 * status it was told, its health saying since when the journal is unavailable, refuses owner
 * commands with that reason, and probes the journal with a short, growing backoff. Once the journal
 * answers it starts the coordinator again, which recovers and reattaches to its ranks (they kept
 * training and resend what was not recorded).
 *
 * <p>Fencing: under sharding the host takes the job's lease ({@code kaon.job.fencing}) before it
 * starts the coordinator, and gives it back when the entity stops (the job ended, its shard moved,
 * the node stops). Until it has the lease it answers for the job as above, saying it waits for the
 * lease, and tries again every {@code lease-retry-interval}; another cluster running the same job
 * (a split brain) holds it. If another owner takes the lease while the coordinator runs (this node
 * could not renew it for longer than its TTL), the host stops the coordinator before it writes
 * again and waits for the lease.
 *
 * <p>The host's reference is the job's address for workers and watchers: it forwards to whichever
 * coordinator runs, so that replies do not go to a stopped one. Nothing of the host survives a
 * crash; it holds only the last status, which a new coordinator reports again after recovery.
 */
final class JobHost {

  /** The answer of a journal probe; {@code error} is null when the journal answered. */
  record JournalChecked(Throwable error) implements JobCoordinator.HostCommand {}

  /** Time to probe the journal again. */
  enum CheckJournal implements JobCoordinator.HostCommand { INSTANCE }

  /** Time to try to take the job's lease (again). */
  enum TakeLease implements JobCoordinator.HostCommand { INSTANCE }

  /** Whether the lease is this host's now ({@code error}: Cassandra did not answer). */
  record LeaseTaken(boolean ours, Throwable error) implements JobCoordinator.HostCommand {}

  /** How long the row of the lease another owner holds still lives, or null if that is unknown. */
  record LeaseHeldFor(Duration remaining) implements JobCoordinator.HostCommand {}

  /** Another owner took the job's lease (from the lease's callback, on another thread). */
  record LeaseLost(String reason) implements JobCoordinator.HostCommand {}

  /**
   * Sharding's stop message for this entity (passivation, hand-off, shutdown). An ordinary
   * message, unlike the stop sharding uses without one, so that the host can first pass on the
   * answers to status requests it is waiting for: a coordinator that passivates (an unknown or
   * ended job) answers the requests it held during its recovery after it asked to be passivated.
   */
  enum Stop implements JobCoordinator.HostCommand { INSTANCE }

  /** The coordinator of incarnation {@code incarnation} should have recovered by now. */
  record RecoveryOverdue(int incarnation) implements JobCoordinator.HostCommand {}

  /** The coordinator's answer to a status request the host passed on, or why there was none. */
  record StatusAnswered(ActorRef<JobStatus> replyTo, JobStatus status, Throwable error) implements JobCoordinator.HostCommand {}

  /**
   * How long the host waits for the coordinator to answer a status request before it answers
   * itself. A coordinator does not take commands while a journal write is in flight; a write that
   * Cassandra does not answer takes the driver's request timeout (10 s) to fail.
   */
  private static final Duration STATUS_ANSWER = Duration.ofSeconds(1);

  /** How long a journal probe may take: longer than the driver's request timeout (10 s), which fails a query first. */
  private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(15);

  private final ActorContext<JobCoordinator.Command> context;
  private final TimerScheduler<JobCoordinator.Command> timers;
  private final String jobId;
  private final JobSettings settings;
  private final BiFunction<ActorRef<JobCoordinator.Command>, ActorRef<WorkerReport>, Behavior<JobCoordinator.Command>> coordinator;
  private final Optional<CassandraLease> lease;
  /** Where the job's workers report to: adapted into the coordinator's commands and passed on. */
  private final ActorRef<WorkerReport> reports;
  /** Whether this host holds the job's lease (always, without one). */
  private boolean leaseHeld;
  private JobStatus lastStatus;
  private int incarnation;
  /** When the running coordinator first left a status request unanswered, or 0 if it answers. */
  private long silentSince;
  /** Status requests passed on to the coordinator and not answered yet (each ends within STATUS_ANSWER). */
  private int pendingAnswers;
  /** What the last failed journal probe said, or null: logged when it changes, not every probe. */
  private String lastProbeError;
  /** Why the running coordinator was started again while it has not recovered yet, or null. */
  private String restartedBecause;

  private JobHost(ActorContext<JobCoordinator.Command> context, TimerScheduler<JobCoordinator.Command> timers, String jobId,
      JobSettings settings, Optional<CassandraLease> lease,
      BiFunction<ActorRef<JobCoordinator.Command>, ActorRef<WorkerReport>, Behavior<JobCoordinator.Command>> coordinator) {
    this.context = context;
    this.timers = timers;
    this.jobId = jobId;
    this.settings = settings;
    this.lease = lease;
    this.leaseHeld = lease.isEmpty();
    this.coordinator = coordinator;
    this.lastStatus = JobStatus.unknown(jobId);
    // One adapter for the host's life: workers keep it across restarts of the coordinator.
    this.reports = context.messageAdapter(WorkerReport.class, JobCoordinator.FromWorker::new);
  }

  /**
   * A host that runs {@code coordinator}, made with the host's own reference and its adapter for
   * worker reports, once it holds {@code lease} (at once without one).
   */
  static Behavior<JobCoordinator.Command> create(String jobId, JobSettings settings, Optional<CassandraLease> lease,
      BiFunction<ActorRef<JobCoordinator.Command>, ActorRef<WorkerReport>, Behavior<JobCoordinator.Command>> coordinator) {
    return Behaviors.setup(context -> Behaviors.withTimers(timers -> Behaviors.withStash(FIRST_TAKE_STASH, stash -> {
      JobHost host = new JobHost(context, timers, jobId, settings, lease, coordinator);
      return host.leaseHeld ? host.running() : host.takingFirst(stash);
    })));
  }

  /** Commands held while the lease is first taken (a few milliseconds when nobody else has it). */
  private static final int FIRST_TAKE_STASH = 1000;

  /**
   * The first attempt to take the lease: commands wait for it, since it normally succeeds at
   * once. If it does not (another coordinator holds the lease, Cassandra does not answer), they are
   * answered while the host keeps trying.
   */
  private Behavior<JobCoordinator.Command> takingFirst(StashBuffer<JobCoordinator.Command> stash) {
    takeLease();
    return Behaviors.receive(JobCoordinator.Command.class)
        .onMessage(Stop.class, stop -> Behaviors.stopped())
        .onMessage(LeaseTaken.class, taken -> {
          if (taken.ours()) {
            leaseHeld = true;
            return stash.unstashAll(running());
          }
          return stash.unstashAll(afterFailedTake(taken));
        })
        .onMessage(JobCoordinator.Command.class, command -> {
          if (!stash.isFull()) {
            stash.stash(command);
          }
          return Behaviors.same();
        })
        .onSignal(PostStop.class, stopped -> giveLeaseUp())
        .build();
  }

  private void takeLease() {
    ActorRef<JobCoordinator.Command> self = context.getSelf();
    context.pipeToSelf(lease.orElseThrow().take(reason -> self.tell(new LeaseLost(String.valueOf(reason)))),
        (ours, error) -> new LeaseTaken(ours != null && ours, error));
  }

  private Behavior<JobCoordinator.Command> afterFailedTake(LeaseTaken taken) {
    timers.startSingleTimer(TakeLease.INSTANCE, settings.leaseRetryInterval());
    if (taken.error() == null) {
      context.pipeToSelf(lease.orElseThrow().heldFor(), (remaining, error) -> new LeaseHeldFor(remaining));
    }
    return acquiring(taken.error() == null ? "held by another owner" : "Cassandra did not answer: " + taken.error().getMessage());
  }

  /** Waits for the job's lease, trying to take it every lease-retry-interval. */
  private Behavior<JobCoordinator.Command> acquiring(String why) {
    String health = "waiting for the job's lease (" + why + "): another coordinator may run this job";
    return answering(health)
        .onMessage(TakeLease.class, take -> {
          takeLease();
          return Behaviors.same();
        })
        .onMessage(LeaseTaken.class, taken -> {
          if (taken.ours()) {
            leaseHeld = true;
            context.getLog().info("job {}: took its lease; starting its coordinator", jobId);
            return running();
          }
          return afterFailedTake(taken);
        })
        .onMessage(LeaseHeldFor.class, held -> {
          timers.startSingleTimer(TakeLease.INSTANCE, nextTake(settings.leaseRetryInterval(), held.remaining()));
          return Behaviors.same();
        })
        .onMessage(LeaseLost.class, lost -> Behaviors.same())
        .onMessage(JobCoordinator.Command.class, other -> Behaviors.same())
        .onSignal(Terminated.class, stopped -> Behaviors.same())
        .onSignal(PostStop.class, stopped -> giveLeaseUp())
        .build();
  }

  /** How often the lease is tried during the last second of another owner's row. */
  static final Duration LAST_SECOND_POLL = Duration.ofMillis(200);

  /**
   * When to try the lease again, given how long the other owner's row still lives ({@code
   * remaining}, whole seconds as Cassandra counts them; null if unknown). A dead holder's row
   * expires within that time, and the next take should follow closely: a coordinator's failover
   * waits for it, and a fixed retry interval added half of it on average. While the row lives
   * for more than a second more, the usual interval (or the time to its last second, if shorter);
   * during its last second, every {@link #LAST_SECOND_POLL}, since Cassandra does not say when in
   * that second it expires.
   */
  static Duration nextTake(Duration retryInterval, Duration remaining) {
    if (remaining == null) {
      return retryInterval;
    }
    Duration toLastSecond = remaining.minusSeconds(1);
    if (toLastSecond.compareTo(LAST_SECOND_POLL) <= 0) {
      return LAST_SECOND_POLL;
    }
    return toLastSecond.compareTo(retryInterval) < 0 ? toLastSecond : retryInterval;
  }

  private Behavior<JobCoordinator.Command> running() {
    ActorRef<JobCoordinator.Command> child =
        context.spawn(coordinator.apply(context.getSelf(), reports), "coordinator-" + (++incarnation));
    context.watch(child);
    timers.startSingleTimer(RecoveryOverdue.class, new RecoveryOverdue(incarnation), settings.recoveryTimeout());
    return Behaviors.receive(JobCoordinator.Command.class)
        .onMessage(JobCoordinator.StatusNoted.class, noted -> {
          lastStatus = noted.status();
          return Behaviors.same();
        })
        .onMessage(JobCoordinator.Recovered.class, recovered -> {
          if (recovered.coordinator().equals(child)) {
            timers.cancel(RecoveryOverdue.class);
            restartedBecause = null;
          }
          return Behaviors.same();
        })
        .onMessage(RecoveryOverdue.class, overdue -> {
          if (overdue.incarnation() != incarnation) {
            return Behaviors.same();
          }
          // Neither recovered nor failed: without this the job would stall without a word.
          Duration timeout = settings.recoveryTimeout();
          String why = "its recovery did not complete within "
              + (timeout.toMillis() % 1000 == 0 ? timeout.toSeconds() + " s" : timeout.toMillis() + " ms")
              + ", so it was stopped and is started again";
          context.getLog().warn("job {}: coordinator {} {}", jobId, child.path().name(), why);
          restartedBecause = why + " at " + Instant.now();
          context.unwatch(child);
          context.stop(child);
          return down(new java.util.concurrent.TimeoutException(why));
        })
        .onMessage(JournalChecked.class, ignored -> Behaviors.same())
        .onMessage(CheckJournal.class, ignored -> Behaviors.same())
        .onMessage(Stop.class, stop -> pendingAnswers == 0 ? Behaviors.stopped() : stopping())
        .onMessage(JobCoordinator.GetStatus.class, get -> {
          pendingAnswers++;
          context.ask(JobStatus.class, child, STATUS_ANSWER, JobCoordinator.GetStatus::new,
              (status, error) -> new StatusAnswered(get.replyTo(), status, error));
          return Behaviors.same();
        })
        .onMessage(StatusAnswered.class, this::onStatusAnswered)
        .onMessage(LeaseLost.class, lost -> {
          // Stopped before it writes again: its lease gate would refuse, but it must not act.
          context.getLog().warn("job {}: {}; stopping its coordinator", jobId, lost.reason());
          leaseHeld = false;
          context.unwatch(child);
          context.stop(child);
          timers.startSingleTimer(TakeLease.INSTANCE, settings.leaseRetryInterval());
          return acquiring("lost: " + lost.reason());
        })
        .onMessage(LeaseTaken.class, ignored -> Behaviors.same())
        .onMessage(LeaseHeldFor.class, ignored -> Behaviors.same())
        .onMessage(TakeLease.class, ignored -> Behaviors.same())
        .onMessage(JobCoordinator.Command.class, command -> {
          child.tell(command);
          return Behaviors.same();
        })
        .onSignal(ChildFailed.class, failed -> down(failed.getCause()))
        .onSignal(Terminated.class, stopped -> down(null))
        .onSignal(PostStop.class, stopped -> giveLeaseUp())
        .build();
  }

  /** Stopping once the status requests passed on are answered (or have timed out). */
  private Behavior<JobCoordinator.Command> stopping() {
    return Behaviors.receive(JobCoordinator.Command.class)
        .onMessage(StatusAnswered.class, answered -> {
          onStatusAnswered(answered);
          return pendingAnswers == 0 ? Behaviors.stopped() : Behaviors.same();
        })
        .onMessage(JobCoordinator.StatusNoted.class, noted -> {
          lastStatus = noted.status();
          return Behaviors.same();
        })
        // Sharding holds new messages for the entity while it stops, and delivers them to the
        // next one.
        .onMessage(JobCoordinator.Command.class, other -> Behaviors.same())
        .onSignal(Terminated.class, stopped -> Behaviors.same())
        .onSignal(PostStop.class, stopped -> giveLeaseUp())
        .build();
  }

  /** The entity stops: the lease goes back at once, rather than after its TTL. */
  private Behavior<JobCoordinator.Command> giveLeaseUp() {
    if (leaseHeld && lease.isPresent()) {
      leaseHeld = false;
      lease.get().giveUp();
    }
    return Behaviors.same();
  }

  private Behavior<JobCoordinator.Command> onStatusAnswered(StatusAnswered answered) {
    pendingAnswers--;
    if (answered.error() == null) {
      silentSince = 0;
      lastStatus = answered.status();
      answered.replyTo().tell(answered.status());
    } else {
      if (silentSince == 0) {
        silentSince = System.currentTimeMillis();
      }
      answered.replyTo().tell(degraded("journal unavailable since " + Instant.ofEpochMilli(silentSince)
          + " (the coordinator is waiting for a write or a recovery" + (restartedBecause == null ? "" : "; " + restartedBecause)
          + ")"));
    }
    return Behaviors.same();
  }

  /** The coordinator stopped: answer for it, and start it again once the journal answers. */
  private Behavior<JobCoordinator.Command> down(Throwable cause) {
    long since = silentSince != 0 ? silentSince : System.currentTimeMillis();
    silentSince = 0;
    String why = cause == null ? "the coordinator stopped" : String.valueOf(cause.getMessage());
    context.getLog().warn("job {}: coordinator stopped ({}); answering for it until the journal answers", jobId, why);
    Duration first = settings.persistRetryMin();
    timers.startSingleTimer(CheckJournal.INSTANCE, first);
    return waiting(since, why, first);
  }

  private Behavior<JobCoordinator.Command> waiting(long since, String why, Duration delay) {
    String health = "journal unavailable since " + Instant.ofEpochMilli(since) + " (" + why
        + "); the coordinator starts again when it answers";
    return answering(health)
        .onMessage(CheckJournal.class, check -> {
          // Bounded: a probe that never completes (a session whose connect hangs) would leave the
          // host waiting for good although Cassandra is back.
          context.pipeToSelf(JournalProbe.ping(context.getSystem(), settings.journalSession())
                  .toCompletableFuture().orTimeout(PROBE_TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS),
              (ok, error) -> new JournalChecked(error));
          return Behaviors.same();
        })
        .onMessage(JournalChecked.class, checked -> {
          if (checked.error() == null) {
            lastProbeError = null;
            context.getLog().info("job {}: the journal answers again; starting its coordinator", jobId);
            if (leaseHeld) {
              return running();
            }
            timers.startSingleTimer(TakeLease.INSTANCE, Duration.ZERO);
            return acquiring("lost while the journal was unavailable");
          }
          Duration next = delay.multipliedBy(2).compareTo(settings.persistRetryMax()) <= 0
              ? delay.multipliedBy(2) : settings.persistRetryMax();
          String error = String.valueOf(checked.error() instanceof java.util.concurrent.TimeoutException
              ? "no answer within " + PROBE_TIMEOUT.toSeconds() + " s" : checked.error().getMessage());
          if (!error.equals(lastProbeError)) {
            // Once per kind of failure: probes come every couple of seconds for as long as it lasts.
            lastProbeError = error;
            context.getLog().info("job {}: the journal does not answer yet ({}); probing every {} ms at most", jobId,
                error, settings.persistRetryMax().toMillis());
          }
          timers.startSingleTimer(CheckJournal.INSTANCE, next);
          return waiting(since, why, next);
        })
        .onMessage(LeaseLost.class, lost -> {
          leaseHeld = false;
          return Behaviors.same();
        })
        // Reports of the job's ranks: they resend what is not acknowledged, and a coordinator that
        // starts again asks them where they are.
        .onMessage(JobCoordinator.Command.class, other -> Behaviors.same())
        .onSignal(PostStop.class, stopped -> giveLeaseUp())
        .build();
  }

  /**
   * What the host answers while no coordinator runs: the last status with {@code health}; owner
   * commands are refused with it (the client retries). The caller adds its own messages and the
   * catch-all.
   */
  private BehaviorBuilder<JobCoordinator.Command> answering(String health) {
    return Behaviors.receive(JobCoordinator.Command.class)
        .onMessage(Stop.class, stop -> pendingAnswers == 0 ? Behaviors.stopped() : stopping())
        .onMessage(JobCoordinator.StatusNoted.class, noted -> {
          lastStatus = noted.status();
          return Behaviors.same();
        })
        .onMessage(StatusAnswered.class, late -> {
          pendingAnswers--;
          late.replyTo().tell(late.error() == null ? late.status() : degraded(health));
          return Behaviors.same();
        })
        .onMessage(JobCoordinator.GetStatus.class, get -> {
          get.replyTo().tell(degraded(health));
          return Behaviors.same();
        })
        .onMessage(JobCoordinator.Watch.class, watch -> {
          // Not subscribed: watchers subscribe again from time to time, and will reach the
          // coordinator once it runs.
          watch.watcher().tell(new JobUpdate.StatusChanged(degraded(health)));
          return Behaviors.same();
        })
        .onMessage(JobCoordinator.Submit.class, submit -> refuse(submit.replyTo(), health))
        .onMessage(JobCoordinator.Cancel.class, cancel -> refuse(cancel.replyTo(), health))
        .onMessage(JobCoordinator.Scale.class, scale -> refuse(scale.replyTo(), health));
  }

  private JobStatus degraded(String health) {
    return lastStatus.withHealth(lastStatus.health().isEmpty() ? health : health + "; " + lastStatus.health());
  }

  private Behavior<JobCoordinator.Command> refuse(ActorRef<OwnerReply> replyTo, String health) {
    replyTo.tell(new OwnerReply.Refused(OwnerReply.Refusal.UNAVAILABLE, "job " + jobId + ": " + health + "; retry"));
    return Behaviors.same();
  }
}
