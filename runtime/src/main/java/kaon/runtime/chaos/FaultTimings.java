package kaon.runtime.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import kaon.runtime.chaos.Observation.FaultStarted;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.StepsSeen;
import kaon.runtime.chaos.Verdict.FaultTiming;

/**
 * How each fault played out for each job running when it struck (invariant 7). A generation that
 * forms after a fault is that fault's doing when no other fault came between; its job "detected"
 * the fault when it re-formed or first reported ill health, "resumed" when a step past the new
 * generation's resume step was seen, and trained again the steps between the highest one seen
 * before and that resume step. A fault that caused no re-formation still has to let the steps
 * advance again, or the job must have ended.
 */
final class FaultTimings {

  /** How the effect of a fault after which training never went on begins, for the checker. */
  static final String NEVER_RESUMED = "never resumed";

  private FaultTimings() {}

  static List<FaultTiming> of(List<Observation> ordered, List<JobHistory> jobs) {
    List<FaultStarted> faults = ordered.stream().filter(FaultStarted.class::isInstance).map(FaultStarted.class::cast).toList();
    List<FaultTiming> timings = new ArrayList<>();
    for (int k = 0; k < faults.size(); k++) {
      FaultStarted fault = faults.get(k);
      long next = k + 1 < faults.size() ? faults.get(k + 1).atMillis() : Long.MAX_VALUE;
      for (JobHistory job : jobs) {
        if (job.runningAt(fault.atMillis())) {
          timings.add(timing(fault, next, job));
        }
      }
    }
    return List.copyOf(timings);
  }

  private static FaultTiming timing(FaultStarted fault, long nextFault, JobHistory job) {
    long at = fault.atMillis();
    Optional<GenerationFormed> reformed = job.generations().stream()
        .filter(g -> g.atMillis() >= at && g.atMillis() < nextFault).findFirst();
    Optional<StepsSeen> ill = job.steps().stream()
        .filter(s -> s.atMillis() >= at && s.atMillis() < nextFault && !s.health().isEmpty()).findFirst();
    long before = job.highestStepBefore(at + 1);
    if (reformed.isPresent()) {
      GenerationFormed g = reformed.get();
      long detected = Math.min(g.atMillis(), ill.map(StepsSeen::atMillis).orElse(Long.MAX_VALUE)) - at;
      Optional<StepsSeen> going = job.steps().stream()
          .filter(s -> s.atMillis() >= g.atMillis() && s.generation() >= g.generation() && s.step() > g.resumeStep())
          .findFirst();
      long replayed = Math.max(0, job.highestStepBefore(g.atMillis()) - g.resumeStep());
      if (going.isEmpty()) {
        return endedOrNever(fault, job, "re-formed as generation " + g.generation(), detected, replayed);
      }
      return new FaultTiming(fault.fault(), fault.kind(), fault.target(), job.jobId(),
          "re-formed as generation " + g.generation() + " (" + g.reason() + ") from " + g.stateSource(), detected,
          going.get().atMillis() - at, replayed);
    }
    Optional<StepsSeen> advanced = job.steps().stream().filter(s -> s.atMillis() > at && s.step() > before).findFirst();
    long detected = ill.map(s -> s.atMillis() - at).orElse(-1L);
    if (advanced.isEmpty()) {
      return endedOrNever(fault, job, ill.isPresent() ? "reported '" + ill.get().health() + "'" : "no sign", detected, -1);
    }
    String effect = ill.isPresent() ? "training went on after reporting '" + ill.get().health() + "'"
        : "training went on in the same generation";
    return new FaultTiming(fault.fault(), fault.kind(), fault.target(), job.jobId(), effect, detected,
        advanced.get().atMillis() - at, 0);
  }

  /** No step advanced after the fault: fine only if the job ended anyway (its last steps were done). */
  private static FaultTiming endedOrNever(FaultStarted fault, JobHistory job, String what, long detected, long replayed) {
    if (job.ended().isPresent()) {
      return new FaultTiming(fault.fault(), fault.kind(), fault.target(), job.jobId(),
          what + "; the job then ended " + job.ended().get().phase(), detected, -1, replayed);
    }
    return new FaultTiming(fault.fault(), fault.kind(), fault.target(), job.jobId(),
        NEVER_RESUMED + " (" + what + ")", detected, -1, replayed);
  }
}
