package kaon.actors.chaos;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The faults the chaos tooling injects inside a node's runtime, where no process or network fault
 * reaches: all-reduce chunks dropped, delayed or damaged on the wire, a slow rank, a poisoned
 * gradient, failing checkpoint writes. Each shows that the part it strikes notices and recovers
 * (a round's deadline, the chunks' checksums, the divergence guard, the checkpoint writer's
 * retries), which no test of the whole could show otherwise.
 *
 * <p>Compiled in and off: unless the node's config says {@code kaon.chaos.runtime-faults.enabled
 * = on}, nothing can be armed and every question below answers "no fault" after one volatile read.
 * Faults are armed through the admin-only {@code ChaosService}, on every node, and strike the
 * ranks they name wherever those run.
 *
 * <p>Thread-safe: armed through gRPC, asked by the all-reduce peers' actors, the training threads
 * and the checkpoint writer.
 */
public final class RuntimeFaults implements Extension {

  /** The extension's id; {@link #get} is the way in. */
  public static final ExtensionId<RuntimeFaults> ID =
      new ExtensionId<>() {
        @Override
        public RuntimeFaults createExtension(ActorSystem<?> system) {
          return new RuntimeFaults(system.settings().config().getBoolean("kaon.chaos.runtime-faults.enabled"));
        }
      };

  /** This node's runtime faults. */
  public static RuntimeFaults get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** What a fault does. */
  public enum Kind {
    /** Chunks the rank sends to its right neighbour are not sent: the round misses its deadline. */
    CHUNK_DROP,
    /** Chunks the rank sends go out {@code delay} late. */
    CHUNK_DELAY,
    /** Chunks the rank sends over a wire get one bit flipped after their checksum. */
    CHUNK_CORRUPT,
    /** The rank sleeps {@code delay} before each step. */
    SLOW_RANK,
    /** One gradient value of the rank becomes NaN, once. */
    POISON_NAN,
    /** One gradient value of the rank becomes 1e30, once: finite, far above any real one. */
    POISON_LARGE,
    /** Checkpoint writes fail, as if Cassandra refused them. */
    CHECKPOINT_WRITE;

    /** Whether it strikes once and is spent. */
    public boolean once() {
      return this == POISON_NAN || this == POISON_LARGE;
    }
  }

  /**
   * A fault to arm.
   *
   * @param kind what it does
   * @param jobId the job it strikes; empty: every job
   * @param rank the rank it strikes; -1: every rank (ignored by checkpoint writes)
   * @param generation the generation it strikes, -1: any. A fault armed on every node that may
   *     strike a limited number of times is pinned to one: a rank moves to another node when its
   *     generation re-forms, where that node's copy would strike again
   * @param probability the share of chunks a chunk fault strikes, in (0, 1]
   * @param delay how late a delayed chunk goes out, or how long a slow rank sleeps per step
   * @param maxStrikes how many times it strikes at most; 0: no limit (a once fault: 1)
   * @param duration how long it stays armed
   * @param seed the seed of its random choices (which chunks)
   */
  public record Fault(Kind kind, String jobId, int rank, long generation, double probability, Duration delay,
      long maxStrikes, Duration duration, long seed) {}

  /** A fault armed on this node, with how often it struck. */
  public record Armed(long id, Fault fault, long armedAtMillis, long strikes, boolean spent) {}

  /** What a peer does with a chunk it is about to send. */
  public enum ChunkAction { SEND, DROP, DELAY, CORRUPT }

  /** Whether this node accepts runtime faults at all. */
  private final boolean enabled;
  private final CopyOnWriteArrayList<Live> live = new CopyOnWriteArrayList<>();
  private final AtomicLong ids = new AtomicLong();
  /** Whether anything is armed: the one read every question makes when nothing is. */
  private volatile boolean any;

  RuntimeFaults(boolean enabled) {
    this.enabled = enabled;
  }

  /** Whether {@code kaon.chaos.runtime-faults.enabled} is on for this node. */
  public boolean enabled() {
    return enabled;
  }

  /**
   * Arms {@code fault} from now for its duration.
   *
   * @return its id on this node
   * @throws IllegalStateException if runtime faults are off on this node
   */
  public long arm(Fault fault) {
    if (!enabled) {
      throw new IllegalStateException("runtime faults are off on this node (kaon.chaos.runtime-faults.enabled = off)");
    }
    Live armed = new Live(ids.incrementAndGet(), fault, System.currentTimeMillis());
    live.add(armed);
    any = true;
    return armed.id;
  }

  /** Disarms every fault; returns how many were armed and not spent. */
  public int clear() {
    int cleared = (int) live.stream().filter(l -> !l.spent(System.currentTimeMillis())).count();
    live.clear();
    any = false;
    return cleared;
  }

  /** Every fault armed since the last {@link #clear}, spent ones included (their strikes are the evidence). */
  public List<Armed> armed() {
    long now = System.currentTimeMillis();
    List<Armed> all = new ArrayList<>();
    for (Live l : live) {
      all.add(new Armed(l.id, l.fault, l.armedAt, l.strikes.get(), l.spent(now)));
    }
    return all;
  }

  /**
   * What rank {@code rank} of {@code jobId}'s {@code generation} does with the next chunk it sends; {@link #chunkDelay}
   * says how late. Only a chunk that crosses a {@code wire} can be damaged: between peers of one
   * JVM there are no bytes to flip, and a damage fault does not count a strike there.
   */
  public ChunkAction chunkAction(String jobId, long generation, int rank, boolean wire) {
    if (!any) {
      return ChunkAction.SEND;
    }
    for (Kind kind : new Kind[] {Kind.CHUNK_DROP, Kind.CHUNK_CORRUPT, Kind.CHUNK_DELAY}) {
      if ((wire || kind != Kind.CHUNK_CORRUPT) && strike(kind, jobId, rank, generation) != null) {
        return kind == Kind.CHUNK_DROP ? ChunkAction.DROP : kind == Kind.CHUNK_CORRUPT ? ChunkAction.CORRUPT
            : ChunkAction.DELAY;
      }
    }
    return ChunkAction.SEND;
  }

  /** How late a delayed chunk of rank {@code rank} goes out (the longest armed delay). */
  public Duration chunkDelay(String jobId, int rank) {
    return longestDelay(Kind.CHUNK_DELAY, jobId, rank);
  }

  /** How long rank {@code rank} sleeps before its next step; zero when no slow-rank fault is armed. */
  public Duration stepDelay(String jobId, int rank) {
    if (!any) {
      return Duration.ZERO;
    }
    Duration delay = longestDelay(Kind.SLOW_RANK, jobId, rank);
    if (!delay.isZero()) {
      strike(Kind.SLOW_RANK, jobId, rank, -1);
    }
    return delay;
  }

  /**
   * The value to put into rank {@code rank}'s gradient of generation {@code generation} now, if a
   * poison fault strikes it: NaN or 1e30; 0 if none does (the fault is spent once it struck).
   */
  public float poison(String jobId, int rank, long generation) {
    if (!any) {
      return 0;
    }
    if (strike(Kind.POISON_NAN, jobId, rank, generation) != null) {
      return Float.NaN;
    }
    return strike(Kind.POISON_LARGE, jobId, rank, generation) != null ? 1e30f : 0;
  }

  /** Why a checkpoint write of {@code jobId} fails now, or null when it may go ahead. */
  public String checkpointWriteFailure(String jobId) {
    if (!any) {
      return null;
    }
    Live l = strike(Kind.CHECKPOINT_WRITE, jobId, -1, -1);
    return l == null ? null : "checkpoint write refused by runtime fault " + l.id + " (injected by the chaos tooling)";
  }

  private Duration longestDelay(Kind kind, String jobId, int rank) {
    Duration longest = Duration.ZERO;
    long now = System.currentTimeMillis();
    for (Live l : live) {
      if (l.fault.kind() == kind && l.matches(jobId, rank, -1) && !l.spent(now) && l.fault.delay().compareTo(longest) > 0) {
        longest = l.fault.delay();
      }
    }
    return longest;
  }

  /** The first live fault of {@code kind} that matches and strikes now (counted), or null. */
  private Live strike(Kind kind, String jobId, int rank, long generation) {
    long now = System.currentTimeMillis();
    for (Live l : live) {
      if (l.fault.kind() == kind && l.matches(jobId, rank, generation) && l.tryStrike(now)) {
        return l;
      }
    }
    return null;
  }

  /** An armed fault and its strikes. */
  private static final class Live {
    final long id;
    final Fault fault;
    final long armedAt;
    final AtomicLong strikes = new AtomicLong();
    /** Draws which chunks a probability strikes; guarded by itself. */
    final Random random;

    Live(long id, Fault fault, long armedAt) {
      this.id = id;
      this.fault = fault;
      this.armedAt = armedAt;
      this.random = new Random(fault.seed());
    }

    boolean matches(String jobId, int rank, long generation) {
      return (fault.jobId().isEmpty() || fault.jobId().equals(jobId))
          && (fault.rank() < 0 || rank < 0 || fault.rank() == rank)
          && (fault.generation() < 0 || generation < 0 || fault.generation() == generation);
    }

    long limit() {
      return fault.kind().once() ? 1 : fault.maxStrikes();
    }

    boolean spent(long now) {
      return now - armedAt >= fault.duration().toMillis() || limit() > 0 && strikes.get() >= limit();
    }

    boolean tryStrike(long now) {
      if (spent(now)) {
        return false;
      }
      if (fault.probability() < 1) {
        synchronized (random) {
          if (random.nextDouble() >= fault.probability()) {
            return false;
          }
        }
      }
      // Counted only while under the limit, so that two threads cannot both take the last strike.
      long limit = limit();
      while (true) {
        long n = strikes.get();
        if (limit > 0 && n >= limit) {
          return false;
        }
        if (strikes.compareAndSet(n, n + 1)) {
          return true;
        }
      }
    }
  }
}
