package kaon.runtime.chaos;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import kaon.runtime.chaos.Observation.CheckpointCommitted;
import kaon.runtime.chaos.Observation.CheckpointVerified;
import kaon.runtime.chaos.Observation.ClusterViews;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.RanksPlaced;
import kaon.runtime.chaos.Observation.StepsSeen;
import kaon.runtime.chaos.Verdict.Finding;

/**
 * Checks a chaos run's history against the {@link Invariant}s: a pure function of the
 * observations, so that each rule is tested on a history written by hand, the violating one
 * included. Evidence is in words: what held (counts, the largest gap) or each violation with the
 * job, step and time it concerns.
 *
 * <p>Samples lag: a step seen is a step reached, but the newest step may not have been seen. The
 * rules therefore only use what was certainly true (a committed checkpoint's step, a generation's
 * recorded resume step and source) and never infer a violation from a sample missing.
 */
public final class HistoryChecker {

  /**
   * How strict the run's judgement is: how far the accuracy may stray from the fault-free run's, and
   * how long a job may go without progress, a new generation or a change of health.
   */
  public record Rules(double accuracyTolerance, Duration stuckLimit) {

    /** The numbers: 1.5 accuracy points, and 5 minutes as the soak has always used. */
    public static Rules standard() {
      return new Rules(0.015, Duration.ofMinutes(5));
    }
  }

  private final Rules rules;

  public HistoryChecker(Rules rules) {
    this.rules = rules;
  }

  /** The verdict on a history (observations in any order). */
  public Verdict check(List<Observation> history) {
    List<Observation> ordered = new ArrayList<>(history);
    ordered.sort(Comparator.comparingLong(Observation::atMillis));
    List<JobHistory> jobs = JobHistory.of(ordered);
    Map<Invariant, List<String>> violations = new HashMap<>();
    Map<Invariant, List<String>> facts = new HashMap<>();
    for (Invariant invariant : Invariant.values()) {
      violations.put(invariant, new ArrayList<>());
      facts.put(invariant, new ArrayList<>());
    }
    if (jobs.isEmpty()) {
      violations.get(Invariant.OUTCOME).add("the history has no submitted job");
    }
    for (JobHistory job : jobs) {
      outcome(job, violations.get(Invariant.OUTCOME), facts.get(Invariant.OUTCOME));
      eachSampleOnce(job, violations.get(Invariant.EACH_SAMPLE_ONCE), facts.get(Invariant.EACH_SAMPLE_ONCE));
      lineage(job, violations.get(Invariant.STEP_LINEAGE), facts.get(Invariant.STEP_LINEAGE));
      journalWriters(job, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
      checkpoints(job, violations.get(Invariant.CHECKPOINT_INTEGRITY), facts.get(Invariant.CHECKPOINT_INTEGRITY));
      accuracy(job, violations.get(Invariant.ACCURACY), facts.get(Invariant.ACCURACY));
      stuck(job, violations.get(Invariant.RECOVERY), facts.get(Invariant.RECOVERY));
    }
    devices(ordered, jobs, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
    cluster(ordered, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
    List<Verdict.FaultTiming> timings = FaultTimings.of(ordered, jobs);
    for (Verdict.FaultTiming t : timings) {
      if (t.effect().startsWith(FaultTimings.NEVER_RESUMED)) {
        violations.get(Invariant.RECOVERY).add("fault " + t.fault() + " (" + t.kind() + " " + t.target() + "): job "
            + t.jobId() + " " + t.effect());
      }
    }
    facts.get(Invariant.RECOVERY).add(timings.size() + " fault effects on jobs measured");
    List<Finding> findings = new ArrayList<>();
    for (Invariant invariant : Invariant.values()) {
      List<String> bad = violations.get(invariant);
      findings.add(new Finding(invariant, bad.isEmpty(), List.copyOf(bad.isEmpty() ? facts.get(invariant) : bad)));
    }
    return new Verdict(List.copyOf(findings), timings);
  }

  // ------------------------------------------------------------------ 1: outcome

  private static void outcome(JobHistory job, List<String> bad, List<String> facts) {
    if (job.ended().isEmpty()) {
      StepsSeen last = job.steps().isEmpty() ? null : job.steps().get(job.steps().size() - 1);
      bad.add("job " + job.jobId() + " did not end" + (last == null ? " (no progress seen)"
          : String.format(Locale.ROOT, " (last seen at step %d, generation %d, health '%s')", last.step(),
              last.generation(), last.health())));
      return;
    }
    JobEnded end = job.ended().get();
    if (job.submitted().expectFailure()) {
      String mention = job.submitted().failureMentions();
      if (!end.phase().equals("FAILED")) {
        bad.add("job " + job.jobId() + " was to fail (mentioning '" + mention + "') but " + end.phase());
      } else if (!end.message().toLowerCase(Locale.ROOT).contains(mention.toLowerCase(Locale.ROOT))) {
        bad.add("job " + job.jobId() + " failed, but its message does not mention '" + mention + "': " + end.message());
      } else {
        facts.add("job " + job.jobId() + " failed as expected: " + end.message());
      }
    } else if (!end.phase().equals("SUCCEEDED")) {
      bad.add("job " + job.jobId() + " " + end.phase() + ": " + end.message());
    } else {
      facts.add("job " + job.jobId() + " succeeded");
    }
  }

  // ------------------------------------------------------------------ 2: each sample once

  private static void eachSampleOnce(JobHistory job, List<String> bad, List<String> facts) {
    Map<Integer, EpochReported> byEpoch = new HashMap<>();
    for (EpochReported e : job.epochs()) {
      if (!e.eachSampleOnce()) {
        bad.add(String.format(Locale.ROOT, "job %s epoch %d did not use each of its samples once (%d samples)",
            job.jobId(), e.epoch(), e.samples()));
      }
      EpochReported before = byEpoch.putIfAbsent(e.epoch(), e);
      if (before != null && !sameResult(before, e)) {
        bad.add(String.format(Locale.ROOT, "job %s epoch %d was reported twice (at step %d and at step %d)",
            job.jobId(), e.epoch(), before.stepsDone(), e.stepsDone()));
      }
    }
    boolean succeeded = job.ended().map(end -> end.phase().equals("SUCCEEDED")).orElse(false);
    OptionalInt expected = expectedEpochs(job);
    if (succeeded && expected.isPresent()) {
      for (int epoch = 1; epoch <= expected.getAsInt(); epoch++) {
        if (!byEpoch.containsKey(epoch)) {
          bad.add("job " + job.jobId() + " succeeded without reporting epoch " + epoch + " of " + expected.getAsInt());
        }
      }
      byEpoch.keySet().stream().filter(epoch -> epoch < 1 || epoch > expected.getAsInt()).sorted()
          .forEach(epoch -> bad.add("job " + job.jobId() + " reported epoch " + epoch + ", outside 1.." + expected.getAsInt()));
    } else if (succeeded) {
      // Max-steps ended the job inside its first epoch, so an epoch's steps are unknown: the epochs
      // reported must still run from 1 without a gap.
      int last = byEpoch.keySet().stream().mapToInt(Integer::intValue).max().orElse(0);
      for (int epoch = 1; epoch <= Math.max(1, last); epoch++) {
        if (!byEpoch.containsKey(epoch)) {
          bad.add("job " + job.jobId() + " succeeded without reporting epoch " + epoch);
        }
      }
    }
    facts.add("job " + job.jobId() + ": " + byEpoch.size() + " epochs, each sample once in every one");
  }

  private static boolean sameResult(EpochReported a, EpochReported b) {
    return a.stepsDone() == b.stepsDone() && a.samples() == b.samples() && a.eachSampleOnce() == b.eachSampleOnce()
        && Double.compare(a.meanLoss(), b.meanLoss()) == 0 && Double.compare(a.testAccuracy(), b.testAccuracy()) == 0;
  }

  /** The epochs a job that succeeded must report: all of them, or as many as its max-steps reach into. */
  private static OptionalInt expectedEpochs(JobHistory job) {
    long maxSteps = job.submitted().maxSteps();
    if (maxSteps <= 0) {
      return OptionalInt.of(job.submitted().epochs());
    }
    OptionalInt perEpoch = job.stepsPerEpoch();
    if (perEpoch.isEmpty()) {
      return OptionalInt.empty();
    }
    long reached = (maxSteps + perEpoch.getAsInt() - 1) / perEpoch.getAsInt();
    return OptionalInt.of((int) Math.min(job.submitted().epochs(), reached));
  }

  // ------------------------------------------------------------------ 3: step lineage

  private static void lineage(JobHistory job, List<String> bad, List<String> facts) {
    String id = job.jobId();
    GenerationFormed previous = null;
    for (GenerationFormed g : job.generations()) {
      String at = "job " + id + " generation " + g.generation();
      if (previous != null && g.generation() <= previous.generation()) {
        bad.add(at + " was recorded twice, differently: " + previous + " and " + g);
        continue;
      }
      String source = g.stateSource();
      if (source.equals("init")) {
        if (g.resumeStep() != 0) {
          bad.add(at + " started from scratch but at step " + g.resumeStep());
        }
        committedBefore(job, g.atMillis()).ifPresent(c -> bad.add(at + " started from scratch although checkpoint "
            + c.checkpointId() + " at step " + c.step() + " had been committed"));
      } else if (source.startsWith("checkpoint:")) {
        String checkpoint = source.substring("checkpoint:".length());
        job.checkpoint(checkpoint).ifPresentOrElse(c -> {
          if (c.step() != g.resumeStep()) {
            bad.add(at + " resumed at step " + g.resumeStep() + " from checkpoint " + checkpoint + ", which holds step " + c.step());
          }
        }, () -> bad.add(at + " resumed from checkpoint " + checkpoint + ", which no commit shows"));
      } else if (source.startsWith("memory:")) {
        memoryResume(job, g, previous, source.substring("memory:".length()), at, bad);
      } else {
        bad.add(at + " names an unknown state source '" + source + "'");
      }
      if (previous == null && !source.equals("init")) {
        bad.add(at + " is the job's first, yet did not start from scratch (" + source + ")");
      }
      previous = g;
    }
    if (job.generations().isEmpty() && job.ended().map(e -> e.phase().equals("SUCCEEDED")).orElse(false)) {
      bad.add("job " + id + " succeeded with no generation recorded");
    }
    samplesInOrder(job, bad);
    finalSteps(job, bad);
    job.journal().ifPresent(j -> {
      if (!j.missing().isEmpty()) {
        bad.add("job " + id + ": its journal lacks events " + j.missing() + " (acknowledged writes lost)");
      }
    });
    facts.add("job " + id + ": " + job.generations().size() + " generations, each resumed where its state came from");
  }

  private static java.util.Optional<CheckpointCommitted> committedBefore(JobHistory job, long millis) {
    return job.checkpoints().stream().filter(c -> c.atMillis() < millis).max(Comparator.comparingLong(CheckpointCommitted::step));
  }

  /**
   * A generation resumed from a survivor's memory: the survivor was in the previous generation, and
   * its state is at least as new as what that generation began from and every checkpoint it had
   * committed (a checkpoint is written from the ranks' state, so they held at least its step).
   */
  private static void memoryResume(JobHistory job, GenerationFormed g, GenerationFormed previous, String worker,
      String at, List<String> bad) {
    if (previous == null) {
      return; // reported as a first generation that did not start from scratch
    }
    int member;
    try {
      member = Integer.parseInt(worker);
    } catch (NumberFormatException e) {
      bad.add(at + " resumed from the memory of '" + worker + "', which is no worker id");
      return;
    }
    if (!previous.workers().contains(member)) {
      bad.add(at + " resumed from worker " + member + "'s memory, but it was not in generation " + previous.generation()
          + " " + previous.workers());
    }
    if (g.resumeStep() < previous.resumeStep()) {
      bad.add(at + " resumed from memory at step " + g.resumeStep() + ", before generation " + previous.generation()
          + " began (" + previous.resumeStep() + ")");
    }
    committedBefore(job, g.atMillis()).filter(c -> c.step() > g.resumeStep()).ifPresent(c -> bad.add(at
        + " resumed from memory at step " + g.resumeStep() + ", older than checkpoint " + c.checkpointId()
        + " at step " + c.step() + " that its ranks had written"));
  }

  /** Within one generation the step never goes back, nor below where the generation began. */
  private static void samplesInOrder(JobHistory job, List<String> bad) {
    Map<Long, Long> begun = new HashMap<>();
    job.generations().forEach(g -> begun.putIfAbsent(g.generation(), g.resumeStep()));
    Map<Long, StepsSeen> last = new HashMap<>();
    for (StepsSeen s : job.steps()) {
      Long start = begun.get(s.generation());
      if (start != null && s.step() < start) {
        bad.add("job " + job.jobId() + " generation " + s.generation() + " was seen at step " + s.step()
            + ", below its resume step " + start);
      }
      StepsSeen before = last.put(s.generation(), s);
      if (before != null && s.step() < before.step()) {
        bad.add("job " + job.jobId() + " generation " + s.generation() + " went back from step " + before.step() + " to "
            + s.step() + " without re-forming");
      }
    }
  }

  /** A job that succeeded trained exactly its steps: every epoch's, or up to max-steps. */
  private static void finalSteps(JobHistory job, List<String> bad) {
    JobEnded end = job.ended().orElse(null);
    OptionalInt perEpoch = job.stepsPerEpoch();
    long maxSteps = job.submitted().maxSteps();
    if (end == null || !end.phase().equals("SUCCEEDED") || (perEpoch.isEmpty() && maxSteps <= 0)) {
      return;
    }
    // Without an epoch's steps, max-steps ended the job inside its first epoch.
    long all = perEpoch.isPresent() ? (long) perEpoch.getAsInt() * job.submitted().epochs() : Long.MAX_VALUE;
    long expected = maxSteps > 0 ? Math.min(all, maxSteps) : all;
    if (end.stepsDone() != expected) {
      bad.add("job " + job.jobId() + " succeeded after " + end.stepsDone() + " steps, not " + expected);
    }
  }

  // ------------------------------------------------------------------ 4: fencing

  /** One writer after another: a writer that comes back after another wrote means two coordinators. */
  private static void journalWriters(JobHistory job, List<String> bad, List<String> facts) {
    if (job.journal().isEmpty()) {
      bad.add("job " + job.jobId() + ": its journal was not read, so two writers cannot be ruled out");
      return;
    }
    List<JournalRead.WriterRun> runs = job.journal().get().runs();
    Set<String> done = new HashSet<>();
    String current = null;
    for (JournalRead.WriterRun run : runs) {
      if (!run.writer().equals(current) && !done.add(run.writer())) {
        bad.add("job " + job.jobId() + ": writer " + run.writer() + " wrote events " + run.first() + ".." + run.last()
            + " after another writer had taken over (two coordinators)");
      }
      current = run.writer();
    }
    facts.add("job " + job.jobId() + ": " + done.size() + " journal writers, each in turn");
  }

  /**
   * No device runs two ranks at once, within a job or across jobs. A job's placement counts from
   * when it was seen until its next generation forms (the old ranks released their devices before
   * that) or it ends.
   */
  private static void devices(List<Observation> ordered, List<JobHistory> jobs, List<String> bad, List<String> facts) {
    Map<String, RanksPlaced> current = new java.util.LinkedHashMap<>();
    int samples = 0;
    for (Observation o : ordered) {
      if (o instanceof GenerationFormed g) {
        current.computeIfPresent(g.jobId(), (job, placed) -> placed.generation() < g.generation() ? null : placed);
      } else if (o instanceof JobEnded e) {
        current.remove(e.jobId());
      } else if (o instanceof RanksPlaced r) {
        samples++;
        current.put(r.jobId(), r);
        Map<String, String> owner = new HashMap<>();
        for (RanksPlaced placed : current.values()) {
          for (RanksPlaced.Rank rank : placed.ranks()) {
            if (rank.device().isEmpty()) {
              continue;
            }
            String device = rank.node() + " " + rank.device();
            String who = "job " + placed.jobId() + " generation " + placed.generation() + " rank " + rank.rank();
            String other = owner.putIfAbsent(device, who);
            if (other != null) {
              bad.add(String.format(Locale.ROOT, "at %d device %s was held by %s and by %s", r.atMillis(), device, other, who));
            }
          }
        }
      }
    }
    facts.add(samples + " placements seen, no device with two ranks");
  }

  private static void cluster(List<Observation> ordered, List<String> bad, List<String> facts) {
    List<ClusterViews> views = ordered.stream().filter(ClusterViews.class::isInstance).map(ClusterViews.class::cast).toList();
    if (views.isEmpty()) {
      bad.add("the cluster's membership was never read");
      return;
    }
    ClusterViews last = views.get(views.size() - 1);
    boolean one = !last.views().isEmpty() && last.views().stream()
        .allMatch(v -> v.size() == last.expectedNodes() && new HashSet<>(v).equals(new HashSet<>(last.views().get(0))));
    if (one) {
      facts.add("one cluster of " + last.expectedNodes() + " at the end");
    } else {
      bad.add("the nodes do not agree on one cluster of " + last.expectedNodes() + ": " + last.views());
    }
  }

  // ------------------------------------------------------------------ 5: checkpoint integrity

  private static void checkpoints(JobHistory job, List<String> bad, List<String> facts) {
    int loaded = 0;
    for (GenerationFormed g : job.generations()) {
      if (!g.stateSource().startsWith("checkpoint:")) {
        continue;
      }
      loaded++;
      String id = g.stateSource().substring("checkpoint:".length());
      CheckpointVerified v = job.verified().get(id);
      String at = "job " + job.jobId() + " generation " + g.generation() + " loaded checkpoint " + id;
      if (v == null) {
        bad.add(at + ", which the tool never read back");
      } else if (v.readSha256().isEmpty()) {
        bad.add(at + ", whose stored bytes could not be read back");
      } else if (!v.readSha256().equals(v.committedSha256())) {
        bad.add(at + ", whose stored bytes hash to " + v.readSha256() + " instead of the recorded " + v.committedSha256());
      } else {
        job.checkpoint(id).filter(c -> !c.sha256().equals(v.committedSha256())).ifPresent(c -> bad.add(at
            + ", recorded with SHA-256 " + c.sha256() + " when committed but " + v.committedSha256() + " when read"));
      }
    }
    for (StepsSeen s : job.steps()) {
      if (s.meanLoss() != null && !Double.isFinite(s.meanLoss())) {
        bad.add("job " + job.jobId() + " reported loss " + s.meanLoss() + " at step " + s.step());
      }
    }
    for (EpochReported e : job.epochs()) {
      if (!Double.isFinite(e.meanLoss())) {
        bad.add("job " + job.jobId() + " epoch " + e.epoch() + " has mean loss " + e.meanLoss());
      }
    }
    facts.add("job " + job.jobId() + ": " + loaded + " checkpoint loads, each matching its SHA-256; losses finite");
  }

  // ------------------------------------------------------------------ 6: accuracy

  private void accuracy(JobHistory job, List<String> bad, List<String> facts) {
    JobEnded end = job.ended().orElse(null);
    if (end == null || !end.phase().equals("SUCCEEDED")) {
      facts.add("job " + job.jobId() + ": no model to compare (did not succeed)");
      return;
    }
    if (job.baseline().isEmpty()) {
      bad.add("job " + job.jobId() + ": no fault-free run to compare with");
      return;
    }
    Observation.Baseline base = job.baseline().get();
    double gap = Math.abs(end.testAccuracy() - base.testAccuracy());
    if (gap > rules.accuracyTolerance()) {
      bad.add(String.format(Locale.ROOT, "job %s reached test accuracy %.4f, %.4f from the fault-free %.4f (tolerance %.4f)",
          job.jobId(), end.testAccuracy(), gap, base.testAccuracy(), rules.accuracyTolerance()));
    }
    boolean fixedWorld = !job.generations().isEmpty()
        && job.generations().stream().allMatch(g -> g.worldSize() == base.worldSize());
    if (fixedWorld && !end.digest().equals(base.digest())) {
      bad.add("job " + job.jobId() + " trained at world size " + base.worldSize() + " throughout, yet its model "
          + end.digest() + " differs from the fault-free " + base.digest());
    }
    facts.add(String.format(Locale.ROOT, "job %s: test accuracy %.4f against %.4f fault-free%s", job.jobId(),
        end.testAccuracy(), base.testAccuracy(), fixedWorld ? ", the same model bit for bit" : ""));
  }

  // ------------------------------------------------------------------ 7: recovery

  /** Between submission and end, something changed within the stuck limit: steps, generation or health. */
  private void stuck(JobHistory job, List<String> bad, List<String> facts) {
    List<Long> changes = new ArrayList<>();
    changes.add(job.submitted().atMillis());
    StepsSeen last = null;
    for (StepsSeen s : job.steps()) {
      if (last == null || s.step() != last.step() || s.generation() != last.generation() || !s.health().equals(last.health())) {
        changes.add(s.atMillis());
      }
      last = s;
    }
    job.generations().forEach(g -> changes.add(g.atMillis()));
    job.epochs().forEach(e -> changes.add(e.atMillis()));
    long end = job.ended().map(JobEnded::atMillis).orElse(lastSeen(job));
    changes.add(end);
    changes.sort(Long::compare);
    long worst = 0;
    long worstFrom = changes.get(0);
    for (int k = 1; k < changes.size(); k++) {
      long gap = changes.get(k) - changes.get(k - 1);
      if (gap > worst) {
        worst = gap;
        worstFrom = changes.get(k - 1);
      }
    }
    if (worst > rules.stuckLimit().toMillis()) {
      bad.add(String.format(Locale.ROOT, "job %s showed no progress, re-formation or change of health for %.0f s from %d"
          + " (step %d)", job.jobId(), worst / 1000.0, worstFrom, job.highestStepBefore(worstFrom + 1)));
    }
    facts.add(String.format(Locale.ROOT, "job %s: at most %.1f s without a sign of progress", job.jobId(), worst / 1000.0));
  }

  private static long lastSeen(JobHistory job) {
    long last = job.submitted().atMillis();
    for (StepsSeen s : job.steps()) {
      last = Math.max(last, s.atMillis());
    }
    return last;
  }
}
