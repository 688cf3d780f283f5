package kaon.runtime.chaos;

import java.time.Duration;
import java.util.List;
import java.util.Random;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.JobSpecification;

/**
 * A chaos scenario as {@link ScenarioFile} reads it: the cluster it needs, the job it submits, what
 * the job must end as, and the faults to apply on a timeline. Random choices (a range, a fault out
 * of several, "any" node) are made from the run's seed, so a run can be repeated. Without {@code
 * overlap}, a fault waits until the one before it is over (a killed node started again and up,
 * Cassandra answering), so that each strikes a whole cluster, and an {@code every} interval is the
 * quiet time between faults; with it, faults on different nodes and Cassandra strike at once (two
 * of three nodes lost together down the third too: it is the minority).
 */
public record Scenario(String name, int nodes, JobSpecification job, Expectation expect, Duration timeLimit,
    boolean overlap, List<FaultRule> faults) {

  /** The name as a file or id part: lower case, runs of anything but letters and digits as one dash. */
  public String slug() {
    String slug = name.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
    return slug.isEmpty() ? "scenario" : slug;
  }

  /** How the job must end: succeed, or fail with a message mentioning {@code failureMentions}. */
  public record Expectation(boolean succeed, String failureMentions, double accuracyTolerance) {}

  /** A span of time given as one value ({@code 5s}) or a range to draw from ({@code 2-10s}). */
  public record Span(Duration least, Duration most) {

    /** A value in the span, drawn from {@code random}. */
    public Duration draw(Random random) {
      long extra = most.toMillis() - least.toMillis();
      return least.plusMillis(extra <= 0 ? 0 : (long) (random.nextDouble() * (extra + 1)));
    }
  }

  /** When a rule fires. */
  public sealed interface Trigger {

    /** Once, this long after the job was submitted. */
    record At(Duration after) implements Trigger {}

    /** Once, when the job has committed its {@code count}-th checkpoint. */
    record AfterCheckpoint(int count) implements Trigger {}

    /** Again and again, a drawn interval apart, from {@code from} until {@code until} after submission. */
    record Every(Span interval, Duration from, Duration until) implements Trigger {}
  }

  /** Which node a process fault hits: a numbered one, one drawn at random, or the job's coordinator's. */
  public sealed interface Target {

    record Node(int number) implements Target {}

    record Any() implements Target {}

    record Coordinator() implements Target {}

    /** Any node but the coordinator's (a partition that leaves the coordinator with the majority). */
    record NotCoordinator() implements Target {}
  }

  /** A fault to apply. */
  public sealed interface Fault {

    /** SIGKILL a node; start it again after {@code restartAfter} (null: it stays down). */
    record Kill(Target target, Span restartAfter) implements Fault {}

    /** SIGSTOP a node, and SIGCONT it after {@code duration}. */
    record Hang(Target target, Span duration) implements Fault {}

    /** SIGTERM a node (a graceful stop); start it again after {@code restartAfter} (null: stays down). */
    record Stop(Target target, Span restartAfter) implements Fault {}

    /** Start a node that is down. */
    record Restart(Target target) implements Fault {}

    /** Stop Cassandra (SIGKILL when {@code kill}, else SIGTERM) and start it again after {@code duration}. */
    record CassandraDown(boolean kill, Span duration) implements Fault {}

    /**
     * A network fault on a node of the namespace VMs, healed after {@code duration}.
     *
     * @param kind what it does
     * @param oneWay a partition that lets the node send but not receive
     * @param percent the packets lost, in %
     * @param rate the bandwidth limit (tc's units: 10mbit)
     * @param delay the delay added each way
     * @param jitter up to this much more delay, drawn per piece of the stream
     */
    record Network(Scenario.NetworkKind kind, Target target, boolean oneWay, double percent, String rate, Duration delay,
        Duration jitter, Span duration) implements Fault {}

    /**
     * A fault inside the nodes' runtime, armed through their chaos service on every node for
     * {@code duration} (a poison: until it struck, at most that long).
     *
     * @param kind what it does
     * @param rank the rank it strikes; -1: one drawn from the job's first min-workers ranks
     * @param probability the share of chunks a chunk fault strikes
     * @param delay how late a delayed chunk goes, or a slow rank's sleep per step; zero otherwise
     * @param strikes how many times it strikes at most; 0: no limit
     */
    record Runtime(RuntimeFaults.Kind kind, int rank, double probability, Duration delay, long strikes, Span duration)
        implements Fault {}
  }

  /** What a network fault does. */
  public enum NetworkKind { PARTITION, LOSS, BANDWIDTH, DELAY }

  /** A trigger and the faults it chooses among (one of them, drawn, each time it fires); its line in the file. */
  public record FaultRule(int line, Trigger trigger, List<Fault> oneOf) {}
}
