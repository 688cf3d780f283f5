package kaon.actors.worker;

import kaon.actors.metrics.KaonMetrics;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where one rank's steps spend their time, over an epoch: computing the gradients (forward,
 * backward and copying them out), the exchange (and within it the reduction as the exchange
 * measured it; the rest is the hand-offs around it: actor hops and thread wake-ups), the
 * divergence check and the ledger, the optimizer, and what runs after a step (rank 0's checkpoint
 * copy and progress). GC time is the JVM's, over the same wall time.
 *
 * <p>Each epoch ends with one line on the {@code kaon.step-profile} logger, per rank, in
 * microseconds per step; {@code bench/step-profile} reads it. Each step's parts also go to the
 * node's metrics ({@code kaon_step_phase_seconds}). A lap is one {@link System#nanoTime}:
 * a few tens of nanoseconds on a step of milliseconds. Plain state of the training thread.
 */
final class StepProfile {

  private static final Logger log = LoggerFactory.getLogger("kaon.step-profile");

  /** A part of a step. */
  enum Part {
    COMPUTE, EXCHANGE, CHECK, OPTIMIZER, AFTER
  }

  private final long[] nanos = new long[Part.values().length];
  /** This step's parts so far. */
  private final long[] stepNanos = new long[Part.values().length];
  /** Where each step's figures also go: this node's Prometheus metrics. */
  private final KaonMetrics.Steps metrics;
  private long reducedBytes;
  private long reduceNanos;
  private long steps;
  private long epochStart;
  private long gcAtStart;
  private long mark;

  StepProfile(KaonMetrics.Steps metrics) {
    this.metrics = metrics;
  }

  /** Starts counting an epoch. */
  void startEpoch() {
    java.util.Arrays.fill(nanos, 0);
    reduceNanos = 0;
    reducedBytes = 0;
    steps = 0;
    gcAtStart = gcMillis();
    epochStart = System.nanoTime();
  }

  /** A step starts now. */
  void startStep() {
    java.util.Arrays.fill(stepNanos, 0);
    mark = System.nanoTime();
  }

  /** {@code part} of the step ended now. */
  void lap(Part part) {
    long now = System.nanoTime();
    nanos[part.ordinal()] += now - mark;
    stepNanos[part.ordinal()] += now - mark;
    mark = now;
  }

  /** The exchange ended now; the reduction itself took {@code reduce} of it. */
  void exchanged(long reduce) {
    lap(Part.EXCHANGE);
    reduceNanos += reduce;
  }

  /** A step of {@code examples} samples completed, whose all-reduce summed {@code bytes}. */
  void stepDone(int examples, long bytes) {
    steps++;
    reducedBytes += bytes;
    metrics.step(stepNanos[Part.COMPUTE.ordinal()], stepNanos[Part.EXCHANGE.ordinal()],
        stepNanos[Part.OPTIMIZER.ordinal()], examples, bytes);
  }

  /** Logs the epoch's line: {@code step-profile job=… generation=… rank=… epoch=… steps=… compute=… …}. */
  void endEpoch(String jobId, long generation, int rank, int worldSize, int epoch) {
    metrics.epoch(reducedBytes, nanos[Part.EXCHANGE.ordinal()], worldSize);
    if (steps == 0 || !log.isInfoEnabled()) {
      return;
    }
    double wall = (System.nanoTime() - epochStart) / 1e3 / steps;
    log.info(String.format(Locale.ROOT,
        "step-profile job=%s generation=%d rank=%d world=%d epoch=%d steps=%d us-per-step: compute=%.1f exchange=%.1f"
            + " reduce=%.1f check=%.1f optimizer=%.1f after=%.1f wall=%.1f gc-ms=%d",
        jobId, generation, rank, worldSize, epoch + 1, steps, us(Part.COMPUTE), us(Part.EXCHANGE),
        reduceNanos / 1e3 / steps, us(Part.CHECK), us(Part.OPTIMIZER), us(Part.AFTER), wall, gcMillis() - gcAtStart));
  }

  private double us(Part part) {
    return nanos[part.ordinal()] / 1e3 / steps;
  }

  private static long gcMillis() {
    long total = 0;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      total += Math.max(0, gc.getCollectionTime());
    }
    return total;
  }
}
