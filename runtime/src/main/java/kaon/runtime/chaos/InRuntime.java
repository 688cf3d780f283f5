package kaon.runtime.chaos;

import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.RuntimeFault;
import kaon.protocol.v1.RuntimeFaultKind;
import kaon.runtime.chaos.Scenario.Fault;

/**
 * Applies the faults inside the nodes' runtime for a {@link FaultInjector}: arms each on every
 * node's chaos service, follows the job's generations for one with a strike limit, and counts its
 * strikes into the history. Runs on the injector's fault threads.
 */
final class InRuntime {

  /** What a fault tells its run: it started (and got its number), ended, or could not be applied. */
  interface FaultLog {
    int started(String kind, String target, String detail);

    void ended(int n);

    void problem(String what);
  }

  private final ClusterApi api;
  private final Supplier<Optional<Job>> currentJob;
  private final HistoryRecorder recorder;
  private final PrintStream out;
  private final FaultLog log;

  InRuntime(ClusterApi api, Supplier<Optional<Job>> currentJob, HistoryRecorder recorder, PrintStream out, FaultLog log) {
    this.api = api;
    this.currentJob = currentJob;
    this.recorder = recorder;
    this.out = out;
    this.log = log;
  }

  /**
   * A fault inside the runtime: armed on every node's chaos service for {@code armed} (a poison
   * until it struck), then counted. One that never struck tested nothing, and says so.
   */
  void apply(Fault.Runtime r, int rank, Duration armed, long seed, int line) {
    String kind = FaultInjector.describe(r);
    Optional<Job> job = currentJob.get();
    if (job.isEmpty()) {
      log.problem("line " + line + ": the job was not known when " + kind + " fired; it was not applied");
      return;
    }
    boolean checkpoints = r.kind() == RuntimeFaults.Kind.CHECKPOINT_WRITE;
    long limit = r.kind().once() ? 1 : r.strikes();
    boolean limited = limit > 0;
    RuntimeFault fault = RuntimeFault.newBuilder()
        .setKind(RuntimeFaultKind.valueOf(r.kind().name()))
        .setJobId(job.get().getJobId())
        .setRank(checkpoints ? -1 : rank)
        // A fault with a limit strikes the generation it was fired in: the rank's copy on another
        // node must not strike the generation that re-formed after it again.
        .setGeneration(limited ? job.get().getGeneration() : -1)
        .setProbability(r.probability())
        .setDelayMs(r.delay().toMillis())
        .setMaxStrikes(r.strikes())
        .setDurationMs(armed.toMillis())
        .setSeed(seed)
        .build();
    String detail = (r.delay().isZero() ? "" : r.delay().toMillis() + " ms, ")
        + (r.probability() < 1 ? "probability " + r.probability() + ", " : "")
        + (r.strikes() > 0 ? "at most " + r.strikes() + " times, " : "")
        + (limited ? "from generation " + fault.getGeneration() + " on, " : "")
        + "armed for up to " + FaultInjector.seconds(armed);
    int n = log.started(kind, checkpoints ? "checkpoints" : "rank " + rank, detail);
    Map<Integer, Long> ids = api.arm(fault);
    if (ids.isEmpty()) {
      log.problem("line " + line + ": no node's chaos service answered; " + kind + " was not applied");
      log.ended(n);
      return;
    }
    // Faults armed, by node and id: one with a limit is armed again, with the strikes left, for
    // each generation that forms before it used them all (the one it was pinned to is gone).
    List<Map<Integer, Long>> all = new ArrayList<>(List.of(ids));
    long pinned = fault.getGeneration();
    long deadline = System.nanoTime() + armed.toNanos();
    long strikes = 0;
    try {
      while (System.nanoTime() < deadline && (limit == 0 || strikes < limit)) {
        Thread.sleep(Math.min(1000, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()))));
        if (limit > 0) {
          strikes = strikes(all);
        }
        if (limited && strikes < limit) {
          long now = currentJob.get().map(Job::getGeneration).orElse(pinned);
          if (now != pinned) {
            pinned = now;
            long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
            all.add(api.arm(fault.toBuilder().setGeneration(now).setDurationMs(left)
                .setMaxStrikes(r.kind().once() ? 0 : limit - strikes).build()));
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    strikes = strikes(all);
    recorder.record(new Observation.FaultStruck(System.currentTimeMillis(), n, strikes));
    log.ended(n);
    out.printf("%s fault %d: %s struck %d time(s) on %d node(s)%n", Instant.now(), n, kind, strikes, ids.size());
    if (strikes == 0) {
      log.problem("line " + line + ": " + kind + " on " + (checkpoints ? "checkpoints" : "rank " + rank)
          + " was armed for " + FaultInjector.seconds(armed) + " but never struck (did the rank exist, and did it " + (checkpoints
          ? "write a checkpoint" : "train") + " meanwhile?)");
    }
  }

  private long strikes(List<Map<Integer, Long>> armed) {
    return armed.stream().mapToLong(api::strikes).sum();
  }
}
