package kaon.runtime.chaos;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import kaon.runtime.chaos.Observation.CheckpointVerified;
import kaon.runtime.chaos.Observation.EpochReported;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
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
      StepLineage.check(job, violations.get(Invariant.STEP_LINEAGE), facts.get(Invariant.STEP_LINEAGE));
      Fencing.journalWriters(job, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
      checkpoints(job, violations.get(Invariant.CHECKPOINT_INTEGRITY), facts.get(Invariant.CHECKPOINT_INTEGRITY));
      accuracy(job, violations.get(Invariant.ACCURACY), facts.get(Invariant.ACCURACY));
      stuck(job, violations.get(Invariant.RECOVERY), facts.get(Invariant.RECOVERY));
    }
    damagedData(ordered, jobs, violations.get(Invariant.CHECKPOINT_INTEGRITY), facts.get(Invariant.CHECKPOINT_INTEGRITY));
    Fencing.devices(ordered, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
    Fencing.cluster(ordered, violations.get(Invariant.FENCING), facts.get(Invariant.FENCING));
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

  /**
   * Each fault that damaged data inside the runtime and struck (a chunk's bits flipped on the
   * wire, a gradient poisoned) was caught: a generation of the job struck re-formed after it,
   * citing the chunk's checksum or the divergence guard; or, failing that, the job's model is the
   * fault-free one bit for bit (the damage fell on values nobody used, say a chunk of a round that
   * had already failed).
   */
  private static void damagedData(List<Observation> ordered, List<JobHistory> jobs, List<String> bad, List<String> facts) {
    Map<Integer, Long> strikes = new HashMap<>();
    ordered.stream().filter(Observation.FaultStruck.class::isInstance).map(Observation.FaultStruck.class::cast)
        .forEach(s -> strikes.merge(s.fault(), s.strikes(), Long::sum));
    int caught = 0;
    for (Observation o : ordered) {
      if (!(o instanceof Observation.FaultStarted f) || !DAMAGE.containsKey(f.kind()) || strikes.getOrDefault(f.fault(), 0L) == 0) {
        continue;
      }
      for (JobHistory job : jobs) {
        if (!job.runningAt(f.atMillis())) {
          continue;
        }
        List<String> signs = DAMAGE.get(f.kind());
        boolean cited = job.generations().stream().anyMatch(g -> g.atMillis() >= f.atMillis()
            && signs.stream().anyMatch(g.reason()::contains));
        boolean sameModel = job.ended().filter(e -> e.phase().equals("SUCCEEDED")).isPresent() && job.baseline().isPresent()
            && job.ended().get().digest().equals(job.baseline().get().digest());
        if (cited || sameModel) {
          caught++;
        } else {
          bad.add("job " + job.jobId() + ": fault " + f.fault() + " (" + f.kind() + " " + f.target() + ") struck "
              + strikes.get(f.fault()) + " time(s), yet no generation re-formed citing " + String.join(" or ", signs)
              + " and the model differs from the fault-free one: the damage may have reached the parameters");
        }
      }
    }
    if (caught > 0) {
      facts.add(caught + " damaging runtime fault(s) caught before they reached the parameters");
    }
  }

  /** What a re-formation cites when each damaging fault kind was caught. */
  private static final Map<String, List<String>> DAMAGE = Map.of(
      "chunk-corrupt", List.of("checksum"),
      "poison-nan", List.of("non-finite", "gradient peak"),
      "poison-large", List.of("non-finite", "gradient peak"));

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
