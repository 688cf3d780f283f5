package kaon.runtime.chaos;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import kaon.runtime.chaos.Scenario.Fault;
import kaon.runtime.chaos.Scenario.FaultRule;
import kaon.runtime.chaos.Scenario.Trigger;

/**
 * When a scenario's rules fire, as a pure function of the time since the job was submitted and
 * the checkpoints it committed: {@code at} once at its time, {@code after-checkpoint} once at its
 * count, {@code every} a drawn interval apart between {@code from} and {@code until}. Each firing
 * draws one fault of the rule's {@code one-of}. Every draw comes from the one seeded random, in the
 * order the rules are listed, so that the same seed and the same progress give the same faults.
 */
public final class FaultSchedule {

  /** A rule that fired, the fault it drew, and the firing's number for that rule (from 1). */
  public record Firing(FaultRule rule, Fault fault, int count) {}

  private final Random random;
  private final boolean gaps;
  private final List<State> states = new ArrayList<>();

  private static final class State {
    final FaultRule rule;
    Duration next; // every: the next firing; null when the rule cannot fire again
    boolean awaitingEnd; // every, with gaps: fired, its next interval starts when the fault is over
    int fired;

    State(FaultRule rule, Duration next) {
      this.rule = rule;
      this.next = next;
    }
  }

  /**
   * A schedule of {@code rules}, drawing from {@code random}. With {@code gaps}, an {@code every}
   * rule's interval is the quiet time between the end of one of its faults and the next (the run
   * calls {@link #faultsOver}); without, it runs from one firing to the next, and faults that last
   * longer than the interval pile up.
   */
  public FaultSchedule(List<FaultRule> rules, Random random, boolean gaps) {
    this.gaps = gaps;
    this.random = random;
    for (FaultRule rule : rules) {
      Duration next = rule.trigger() instanceof Trigger.Every every ? every.from().plus(every.interval().draw(random))
          : Duration.ZERO;
      states.add(new State(rule, next));
    }
  }

  /**
   * The rules that fire now, {@code elapsed} after submission with {@code checkpoints} committed.
   * With gaps, one at most: rules due together fire one after another, in the file's order, each
   * once the fault before it is over (the others stay due), so that each strikes a whole cluster
   * and a generation of its own.
   */
  public List<Firing> due(Duration elapsed, int checkpoints) {
    List<Firing> due = new ArrayList<>();
    for (State s : states) {
      if (s.next == null || gaps && !due.isEmpty()) {
        continue;
      }
      Trigger trigger = s.rule.trigger();
      boolean fires;
      if (trigger instanceof Trigger.At at) {
        fires = elapsed.compareTo(at.after()) >= 0;
      } else if (trigger instanceof Trigger.AfterCheckpoint after) {
        fires = checkpoints >= after.count();
      } else {
        Trigger.Every every = (Trigger.Every) trigger;
        fires = elapsed.compareTo(s.next) >= 0 && elapsed.compareTo(every.until()) <= 0;
        if (elapsed.compareTo(every.until()) > 0) {
          s.next = null; // past its window
        }
      }
      if (!fires) {
        continue;
      }
      s.fired++;
      List<Fault> choices = s.rule.oneOf();
      due.add(new Firing(s.rule, choices.get(random.nextInt(choices.size())), s.fired));
      s.next = null;
      if (trigger instanceof Trigger.Every every) {
        if (gaps) {
          s.awaitingEnd = true;
        } else {
          Duration next = elapsed.plus(every.interval().draw(random));
          s.next = next.compareTo(every.until()) <= 0 ? next : null;
        }
      }
    }
    return due;
  }

  /** With gaps: the faults fired so far are over, {@code elapsed} after submission; the waiting rules draw their next. */
  public void faultsOver(Duration elapsed) {
    for (State s : states) {
      if (s.awaitingEnd && s.rule.trigger() instanceof Trigger.Every every) {
        s.awaitingEnd = false;
        Duration next = elapsed.plus(every.interval().draw(random));
        s.next = next.compareTo(every.until()) <= 0 ? next : null;
      }
    }
  }

  /** Whether no rule can fire again (an {@code after-checkpoint} rule waits for its count until then). */
  public boolean over() {
    return states.stream().allMatch(s -> s.next == null && !s.awaitingEnd);
  }

  /** Whether no time-driven rule can fire again; rules waiting for a checkpoint count may. */
  public boolean timeOver() {
    return states.stream().allMatch(s -> s.next == null && !s.awaitingEnd
        || s.rule.trigger() instanceof Trigger.AfterCheckpoint);
  }

  /** The rules that never fired, with their lines, for the report: a fault that never struck tested nothing. */
  public List<FaultRule> neverFired() {
    return states.stream().filter(s -> s.fired == 0).map(s -> s.rule).toList();
  }
}
