package kaon.actors.allreduce;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The all-reduce of a generation whose ranks all run in this JVM, through memory they share: no
 * chunks, no messages, no actor between a rank's training thread and its sum.
 *
 * <p>Each rank's training thread calls {@link #reduce} with its buffer. Once every rank has
 * arrived, rank {@code k} sums segment {@code k} of every buffer into a shared sum; once every
 * segment is summed, each rank copies the sum into its own buffer. The segments are the ring's
 * ({@link RingSchedule}) and so is the order of the additions: segment {@code k} starts with rank
 * {@code k}'s values and adds rank {@code k+1}'s, {@code k+2}'s, ... in turn, as the chunks of a
 * reduce-scatter would. The bits are the ring's, so where a job's ranks run never changes its
 * result (the chaos checker compares models bit for bit across placements).
 *
 * <p>A step costs two barriers: all arrived (the last one to arrive checks that every rank is at
 * the same step with the same length, and sizes the sum), and all segments summed. The next
 * step's sums cannot overwrite the sum while a slow rank still copies it: they start only once
 * that rank has arrived at the next step.
 *
 * <p>Deadlines are the ring's ({@link RoundTimes}, one per rank). A missed deadline, a mismatch
 * or an {@link #abort} breaks the reduction for good, and every rank waiting in it, or arriving
 * later, fails with the reason, as every later round of a broken ring does.
 *
 * <p>Thread-safe: each rank's thread calls {@link #reduce} for its own rank only; anyone may
 * {@link #abort}. What the ranks write before a barrier (their buffers, the sum's segments) is
 * read by the others only after it, through the barrier's lock.
 */
public final class SharedReduction {

  /** How long a rank spins for the others before it sleeps. */
  private static final long SPIN_NANOS = 20_000;

  private final String jobId;
  private final long generation;
  private final int worldSize;
  private final AllReduceSettings settings;
  /** Each rank's buffer of the step in flight: written before it arrives, read after all did. */
  private final float[][] buffers;
  /** The step each rank is at: read without the barrier too, to name the ranks that are missing. */
  private final AtomicLongArray steps;
  private final RoundTimes[] times;
  /** Guards the barrier: {@link #arrived}, {@link #phase} and {@link #brokenBecause} change under it. */
  private final Object lock = new Object();
  /** Ranks that arrived at the current barrier. */
  private int arrived;
  /** Barriers passed: two per step. Read without the lock while spinning. */
  private volatile long phase;
  /** The summed buffer; sized by the last rank to arrive, never shrunk. */
  private float[] sum = new float[0];
  private volatile String brokenBecause;

  /** The reduction of {@code worldSize} ranks of {@code generation} of {@code jobId}. */
  public SharedReduction(String jobId, long generation, int worldSize, AllReduceSettings settings) {
    if (worldSize < 1) {
      throw new IllegalArgumentException("worldSize must be positive, was " + worldSize);
    }
    this.jobId = jobId;
    this.generation = generation;
    this.worldSize = worldSize;
    this.settings = settings;
    this.buffers = new float[worldSize][];
    this.steps = new AtomicLongArray(worldSize);
    for (int r = 0; r < worldSize; r++) {
      steps.set(r, Long.MIN_VALUE);
    }
    this.times = new RoundTimes[worldSize];
    for (int r = 0; r < worldSize; r++) {
      times[r] = new RoundTimes();
    }
  }

  /** Ranks sharing it. */
  public int worldSize() {
    return worldSize;
  }

  /**
   * Sums {@code buffer} with every other rank's buffer of {@code step}, in place, and returns it
   * with the time the reduction took on this rank (its wait for the slowest rank included).
   *
   * @throws BrokenException when a rank missed the deadline, the ranks disagree on the step or the
   *     length, or the reduction was aborted: now or at any earlier step
   */
  public AllReducePeer.Reduced reduce(int rank, long step, float[] buffer) throws InterruptedException {
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank " + rank + " is outside world size " + worldSize);
    }
    long start = System.nanoTime();
    if (worldSize == 1) {
      return new AllReducePeer.Reduced(step, buffer, 0);
    }
    Duration deadline = times[rank].deadline(settings);
    buffers[rank] = buffer;
    steps.set(rank, step);
    await(rank, step, deadline, start, "to arrive");
    // The ring's cut, so that every value is summed in the order the ring sums it.
    RingSchedule cut = new RingSchedule(worldSize, buffer.length, 1);
    sumSegment(rank, cut.segmentStart(rank), cut.segmentStart(rank + 1));
    await(rank, step, deadline, start, "to sum their segments");
    System.arraycopy(sum, 0, buffer, 0, buffer.length);
    long nanos = System.nanoTime() - start;
    times[rank].record(nanos);
    return new AllReducePeer.Reduced(step, buffer, nanos);
  }

  /**
   * The generation is over: every rank waiting fails now with {@code reason}, and so does every
   * later call. The first reason is kept.
   */
  public void abort(String reason) {
    breakWith(reason);
  }

  /** Whether the reduction is broken for good (a deadline missed, a mismatch, an abort). */
  public boolean broken() {
    return brokenBecause != null;
  }

  /** Segment {@code k} in the ring's order: rank k's values, then k+1's added, then k+2's, ... */
  private void sumSegment(int k, int from, int to) {
    float[] out = sum;
    float[] first = buffers[k];
    float[] second = buffers[(k + 1) % worldSize];
    for (int i = from; i < to; i++) {
      out[i] = second[i] + first[i];
    }
    for (int t = 2; t < worldSize; t++) {
      float[] next = buffers[(k + t) % worldSize];
      for (int i = from; i < to; i++) {
        out[i] = next[i] + out[i];
      }
    }
  }

  /**
   * Arrives at the barrier of this half-step and waits for every other rank, until the deadline.
   * A rank released by the last arrival returns normally even if the reduction breaks right after
   * (a rank that finished the job leaves it): its half-step is complete.
   */
  private void await(int rank, long step, Duration deadline, long start, String what) throws InterruptedException {
    long my;
    synchronized (lock) {
      if (brokenBecause != null) {
        throw brokenError();
      }
      my = phase;
      if (++arrived == worldSize) {
        arrived = 0;
        String mismatch = (my & 1) == 0 ? checkArrivals() : null;
        if (mismatch != null) {
          brokenBecause = mismatch;
        } else {
          phase = my + 1;
        }
        lock.notifyAll();
        if (mismatch != null) {
          throw brokenError();
        }
        return;
      }
    }
    // The other ranks usually arrive within microseconds of each other: a short spin saves the
    // wake-up of a thread that went to sleep (tens of microseconds on a busy machine).
    long spinUntil = System.nanoTime() + SPIN_NANOS;
    while (phase == my && brokenBecause == null && System.nanoTime() < spinUntil) {
      Thread.onSpinWait();
    }
    long end = start + deadline.toNanos();
    synchronized (lock) {
      while (phase == my) {
        if (brokenBecause != null) {
          throw brokenError();
        }
        long left = end - System.nanoTime();
        if (left <= 0) {
          brokenBecause = "all-reduce of step " + step + " (job " + jobId + ", generation " + generation + ", rank " + rank
              + " of " + worldSize + ", in shared memory) missed its deadline of " + deadline.toMillis()
              + " ms waiting for " + missing(step) + " " + what;
          lock.notifyAll();
          throw brokenError();
        }
        try {
          lock.wait(Math.max(1, left / 1_000_000), 0);
        } catch (InterruptedException e) {
          breakWith("rank " + rank + " was interrupted in the all-reduce of step " + step);
          throw e;
        }
      }
    }
  }

  /** Every rank arrived at a step's first barrier: null if they agree, else why not. Sizes the sum. */
  private String checkArrivals() {
    long step = steps.get(0);
    int length = buffers[0].length;
    for (int r = 1; r < worldSize; r++) {
      if (steps.get(r) != step || buffers[r].length != length) {
        return "the ranks of job " + jobId + " generation " + generation + " disagree: rank 0 reduces step " + step + " ("
            + length + " floats), rank " + r + " step " + steps.get(r) + " (" + buffers[r].length + " floats)";
      }
    }
    if (sum.length < length) {
      sum = new float[length];
    }
    return null;
  }

  /** The ranks that have not reached {@code step} (or, when all have, every other rank). */
  private String missing(long step) {
    List<Integer> behind = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      if (steps.get(r) < step) {
        behind.add(r);
      }
    }
    if (behind.isEmpty()) {
      return "the other ranks";
    }
    return (behind.size() == 1 ? "rank " : "ranks ") + behind.toString().replaceAll("[\\[\\]]", "");
  }

  private void breakWith(String reason) {
    synchronized (lock) {
      if (brokenBecause == null) {
        brokenBecause = reason;
      }
      lock.notifyAll();
    }
  }

  private BrokenException brokenError() {
    return new BrokenException(brokenBecause);
  }

  /** The reduction cannot complete; the message says why, for the job's health. */
  public static final class BrokenException extends RuntimeException {
    BrokenException(String message) {
      super(message);
    }
  }
}
