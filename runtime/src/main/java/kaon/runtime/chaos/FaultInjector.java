package kaon.runtime.chaos;

import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import kaon.protocol.v1.Job;
import kaon.runtime.chaos.FaultSchedule.Firing;
import kaon.runtime.chaos.Scenario.Fault;
import kaon.runtime.chaos.Scenario.Target;

/**
 * Applies a run's faults to its cluster, each on a thread of its own so that faults overlap as
 * their schedule says (a node hangs while Cassandra is down), and records each one in the history
 * as it starts and when it is undone. One fault at a time per node and one on Cassandra: a fault
 * drawn for "any" node takes one that is free, and one for a busy numbered node waits for it.
 *
 * <p>It also stands in for the supervisor a production node has (systemd's Restart=on-failure): a
 * node that exited on its own (the cluster downed it after a hang) and that no fault keeps down is
 * started again. Whatever is still broken when the run ends is undone by {@link #finish}.
 */
final class FaultInjector implements InRuntime.FaultLog {

  private static final Duration WAIT_FOR_TARGET = Duration.ofMinutes(5);
  // Held by the node fault under way when faults do not overlap.
  private static final String NODE_FAULTS = "node faults";

  private final ChaosCluster cluster;
  private final HistoryRecorder recorder;
  private final Random random;
  private final PrintStream out;
  private final Supplier<Optional<Integer>> coordinatorNode;
  private final boolean overlap;
  /** The nodes' chaos services, for faults inside the runtime; null where there are none. */
  private final ClusterApi api;
  /** The ranks a runtime fault on "any" rank draws from: those of the job's smallest world. */
  private final int minWorkers;
  private final InRuntime inRuntime;
  private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "chaos-fault");
    t.setDaemon(true);
    return t;
  });
  // Guarded by this: what faults hold now, and which nodes a fault keeps down (stay-down).
  private final Set<String> busy = new HashSet<>();
  private final Set<Integer> keptDown = new HashSet<>();
  private int underWay;
  private final Map<String, Integer> counts = new LinkedHashMap<>();
  private final List<String> problems = new ArrayList<>();
  private int numbered;

  FaultInjector(ChaosCluster cluster, HistoryRecorder recorder, Random random, PrintStream out,
      Supplier<Optional<Integer>> coordinatorNode, boolean overlap, ClusterApi api, Supplier<Optional<Job>> currentJob,
      int minWorkers) {
    this.overlap = overlap;
    this.api = api;
    this.minWorkers = Math.max(1, minWorkers);
    this.inRuntime = new InRuntime(api, currentJob, recorder, out, this);
    this.cluster = cluster;
    this.recorder = recorder;
    this.random = random;
    this.out = out;
    this.coordinatorNode = coordinatorNode;
  }

  /** Whether no fault is under way (those applied have all been undone, or were skipped). */
  synchronized boolean idle() {
    return underWay == 0;
  }

  /** Applies a firing: its target is chosen now (from the seeded random), the fault runs on its own thread. */
  synchronized void apply(Firing firing) {
    Fault fault = firing.fault();
    if (fault instanceof Fault.Runtime r) {
      // Drawn here, on the schedule's thread, so that a seed repeats them.
      int rank = r.rank() >= 0 ? r.rank() : random.nextInt(minWorkers);
      Duration armed = r.duration().draw(random);
      long seed = random.nextLong();
      run(() -> inRuntime.apply(r, rank, armed, seed, firing.rule().line()));
      return;
    }
    if (fault instanceof Fault.CassandraDown down) {
      Duration length = down.duration().draw(random);
      run(() -> cassandraOutage(down.kill(), length, firing));
      return;
    }
    Target target = target(fault);
    boolean restart = fault instanceof Fault.Restart;
    // The coordinator's node is found when the fault runs, not now: it may be waiting for a node
    // busy with another fault, and by then the coordinator has moved (0 stands for it).
    Optional<Integer> node = target instanceof Target.Coordinator && !restart ? Optional.of(0)
        : target instanceof Target.NotCoordinator ? Optional.of(-1) : resolve(target, restart);
    if (node.isEmpty()) {
      String why = restart ? "no node is down to restart" : "every node is busy with another fault or kept down";
      problems.add("line " + firing.rule().line() + ": " + why + " when the rule fired (" + describe(fault) + ")");
      out.printf("%s skipped %s: %s%n", Instant.now(), describe(fault), why);
      return;
    }
    int k = node.get();
    // Drawn here, on the schedule's thread, so that a seed repeats them; null: the node stays down.
    Duration length = null;
    if (fault instanceof Fault.Hang h) {
      length = h.duration().draw(random);
    } else if (fault instanceof Fault.Kill f && f.restartAfter() != null) {
      length = f.restartAfter().draw(random);
    } else if (fault instanceof Fault.Stop f && f.restartAfter() != null) {
      length = f.restartAfter().draw(random);
    } else if (fault instanceof Fault.Network f) {
      length = f.duration().draw(random);
    }
    Duration drawn = length;
    long seed = fault instanceof Fault.Network ? random.nextLong() : 0;
    run(() -> onNode(fault, k, drawn, seed, firing));
  }

  /** Runs a fault on its own thread, counted as under way from now until it is over. */
  private void run(Runnable fault) {
    underWay++;
    threads.execute(() -> {
      try {
        fault.run();
      } finally {
        synchronized (this) {
          underWay--;
        }
      }
    });
  }

  /** Starts, each on a fault thread, the nodes that exited on their own; called every few seconds. */
  synchronized void supervise() {
    for (int k = 1; k <= cluster.size(); k++) {
      String key = "node " + k;
      if (!busy.contains(key) && !keptDown.contains(k) && !cluster.running(k)) {
        busy.add(key);
        int node = k;
        threads.execute(() -> {
          try {
            out.printf("%s node %d exited on its own; starting it again, as a supervisor would%n", Instant.now(), node);
            cluster.start(node);
          } catch (IOException e) {
            problem("node " + node + " could not be started again: " + e.getMessage());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          } finally {
            release(key);
          }
        });
      }
    }
  }

  /**
   * Waits for the faults under way to end, then undoes what is left: runtime faults, hung nodes,
   * Cassandra, downed nodes.
   */
  void finish() throws InterruptedException {
    threads.shutdown();
    if (!threads.awaitTermination(10, TimeUnit.MINUTES)) {
      problem("faults were still under way 10 min after the run ended");
    }
    undoAll();
    api.clearFaults();
  }

  /** Brings everything back: continues every node, starts Cassandra and every node that does not run. */
  private void undoAll() {
    for (int k = 1; k <= cluster.size(); k++) {
      try {
        cluster.hang(k, false);
      } catch (IOException | InterruptedException e) {
        problem("node " + k + " could not be continued: " + e.getMessage());
      }
    }
    try {
      cluster.cassandraUp();
      for (int k = 1; k <= cluster.size(); k++) {
        cluster.start(k);
      }
    } catch (IOException | InterruptedException e) {
      problem("the cluster could not be brought back whole: " + e.getMessage());
    }
  }

  synchronized Map<String, Integer> counts() {
    return new LinkedHashMap<>(counts);
  }

  synchronized List<String> problems() {
    return List.copyOf(problems);
  }

  synchronized int injected() {
    return numbered;
  }

  // ------------------------------------------------------------------ faults

  private void onNode(Fault fault, int wanted, Duration length, long seed, Firing firing) {
    // Without overlap, one node fault at a time: this one waits for the one under way to be over.
    if (!overlap && !acquire(NODE_FAULTS)) {
      problem("line " + firing.rule().line() + ": another node fault was under way for " + WAIT_FOR_TARGET.toMinutes()
          + " min; " + describe(fault) + " was not applied");
      return;
    }
    int node = wanted == 0 ? acquireByCoordinator(true) : wanted == -1 ? acquireByCoordinator(false) : wanted;
    String key = "node " + node;
    if (node <= 0 || wanted > 0 && !acquire(key)) {
      problem("line " + firing.rule().line() + ": " + (wanted == 0 ? "the job's coordinator was on no free node"
          : wanted == -1 ? "no node but the coordinator's was free" : "node " + node + " stayed busy with another fault")
          + " for " + WAIT_FOR_TARGET.toMinutes() + " min; " + describe(fault) + " was not applied");
      if (!overlap) {
        release(NODE_FAULTS);
      }
      return;
    }
    try {
      if (fault instanceof Fault.Kill || fault instanceof Fault.Stop) {
        downAndMaybeUp(fault instanceof Fault.Kill, node, length);
      } else if (fault instanceof Fault.Network net) {
        onNetwork(net, node, length, seed);
      } else if (fault instanceof Fault.Hang) {
        int n = started("hang", key, "SIGSTOP for " + seconds(length));
        cluster.hang(node, true);
        Thread.sleep(length.toMillis());
        cluster.hang(node, false);
        ended(n);
      } else {
        int n = started("restart", key, "started again");
        cluster.start(node);
        synchronized (this) {
          keptDown.remove(node);
        }
        ended(n);
      }
    } catch (IOException e) {
      problem(describe(fault) + " on node " + node + " failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      release(key);
      if (!overlap) {
        release(NODE_FAULTS);
      }
    }
  }

  /** A network fault on {@code node} for {@code length}, then healed. */
  private void onNetwork(Fault.Network net, int node, Duration length, long seed) throws IOException, InterruptedException {
    String detail = switch (net.kind()) {
      case PARTITION -> (net.oneWay() ? "one way (it sends, receives nothing)" : "both ways") + ", from the other nodes";
      case LOSS -> String.format(java.util.Locale.ROOT, "%.1f%% of its packets lost", net.percent());
      case BANDWIDTH -> "limited to " + net.rate() + " each way";
      case DELAY -> net.delay().toMillis() + " ms + up to " + net.jitter().toMillis() + " ms, each way";
    };
    int n = started(describe(net), "node " + node, detail + ", healed after " + seconds(length));
    try {
      switch (net.kind()) {
        case PARTITION -> cluster.partition(node, net.oneWay());
        case LOSS -> cluster.loss(node, net.percent());
        case BANDWIDTH -> cluster.rate(node, net.rate());
        case DELAY -> cluster.delay(node, net.delay(), net.jitter(), seed);
      }
      Thread.sleep(length.toMillis());
    } finally {
      cluster.heal(node);
    }
    ended(n);
  }

  /** Kills or stops a node, and starts it again {@code after} later (null: it stays down). */
  private void downAndMaybeUp(boolean kill, int node, Duration after) throws IOException, InterruptedException {
    int n = started(kill ? "kill" : "stop", "node " + node, (kill ? "SIGKILL" : "SIGTERM")
        + (after == null ? ", kept down" : ", started again after " + seconds(after)));
    if (after == null) {
      synchronized (this) {
        keptDown.add(node);
      }
    }
    if (kill) {
      cluster.kill(node);
    } else {
      cluster.terminate(node);
    }
    if (after != null) {
      Thread.sleep(after.toMillis());
      cluster.start(node);
      ended(n);
    }
  }

  private void cassandraOutage(boolean kill, Duration length, Firing firing) {
    if (!acquire("cassandra")) {
      problem("line " + firing.rule().line() + ": Cassandra stayed down for another fault; this one was not applied");
      return;
    }
    try {
      int n = started(kill ? "cassandra-kill" : "cassandra-stop", "cassandra", "for " + seconds(length));
      cluster.cassandraDown(kill);
      Thread.sleep(length.toMillis());
      cassandraUp();
      ended(n);
    } catch (IOException e) {
      problem("the Cassandra outage failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      release("cassandra");
    }
  }

  /** Starts Cassandra again, and again after a pause if it would not start, as a supervisor would. */
  private void cassandraUp() throws IOException, InterruptedException {
    for (int attempt = 1; ; attempt++) {
      try {
        cluster.cassandraUp();
        return;
      } catch (IOException e) {
        if (attempt == 3) {
          throw e;
        }
        out.printf("%s Cassandra did not start again (%s); trying again in 5 s%n", Instant.now(), e.getMessage());
        Thread.sleep(5_000);
      }
    }
  }

  // ------------------------------------------------------------------ bookkeeping

  private static Target target(Fault fault) {
    if (fault instanceof Fault.Kill f) {
      return f.target();
    } else if (fault instanceof Fault.Stop f) {
      return f.target();
    } else if (fault instanceof Fault.Hang f) {
      return f.target();
    } else if (fault instanceof Fault.Restart f) {
      return f.target();
    } else if (fault instanceof Fault.Network f) {
      return f.target();
    }
    throw new IllegalStateException("no target: " + fault);
  }

  private Optional<Integer> resolve(Target target, boolean restart) {
    return choose(target, restart, cluster.size(), keptDown, busyNodes(), Optional.empty(), random);
  }

  /**
   * The node a fault hits: a numbered one as named; for a restart one that a fault keeps down; for
   * the others the coordinator's node when that is asked for and known, else one drawn from those
   * that are up and free of other faults. Empty when there is none.
   */
  static Optional<Integer> choose(Target target, boolean restart, int nodes, Set<Integer> keptDown,
      Set<Integer> busy, Optional<Integer> coordinator, Random random) {
    if (target instanceof Target.Node n) {
      return Optional.of(n.number());
    }
    if (target instanceof Target.Coordinator && !restart && coordinator.isPresent()) {
      return coordinator;
    }
    List<Integer> candidates = new ArrayList<>();
    for (int k = 1; k <= nodes; k++) {
      boolean down = keptDown.contains(k);
      if (restart ? down : !down && !busy.contains(k)) {
        candidates.add(k);
      }
    }
    return candidates.isEmpty() ? Optional.empty() : Optional.of(candidates.get(random.nextInt(candidates.size())));
  }

  /**
   * Takes the node the job's coordinator runs on ({@code itsOwn}), or one drawn from those up and
   * free that does not run it, asking again until the coordinator's node is known and the node is
   * free; 0 when it never was.
   */
  private int acquireByCoordinator(boolean itsOwn) {
    long deadline = System.nanoTime() + WAIT_FOR_TARGET.toNanos();
    while (System.nanoTime() < deadline) {
      Optional<Integer> coordinator = coordinatorNode.get();
      synchronized (this) {
        Optional<Integer> node = coordinator.isEmpty() ? Optional.empty()
            : itsOwn ? coordinator.filter(k -> !keptDown.contains(k))
            : choose(new Target.Any(), false, cluster.size(), keptDown, busyNodes(coordinator.get()), Optional.empty(), random);
        if (node.isPresent() && busy.add("node " + node.get())) {
          return node.get();
        }
      }
      try {
        Thread.sleep(300);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return 0;
      }
    }
    return 0;
  }

  /** The nodes a fault holds now, and {@code also}. */
  private Set<Integer> busyNodes(int... also) {
    Set<Integer> nodes = new HashSet<>();
    for (int k = 1; k <= cluster.size(); k++) {
      if (busy.contains("node " + k)) {
        nodes.add(k);
      }
    }
    for (int k : also) {
      nodes.add(k);
    }
    return nodes;
  }

  private boolean acquire(String key) {
    long deadline = System.nanoTime() + WAIT_FOR_TARGET.toNanos();
    synchronized (this) {
      while (busy.contains(key)) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        try {
          TimeUnit.NANOSECONDS.timedWait(this, left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
      busy.add(key);
      return true;
    }
  }

  private synchronized void release(String key) {
    busy.remove(key);
    notifyAll();
  }

  @Override
  public synchronized int started(String kind, String target, String detail) {
    int n = ++numbered;
    counts.merge(kind, 1, Integer::sum);
    out.printf("%s fault %d: %s %s, %s%n", Instant.now(), n, kind, target, detail);
    recorder.record(new Observation.FaultStarted(System.currentTimeMillis(), n, kind, target, detail));
    return n;
  }

  @Override
  public void ended(int n) {
    recorder.record(new Observation.FaultEnded(System.currentTimeMillis(), n));
  }

  @Override
  public synchronized void problem(String what) {
    problems.add(what);
    out.println("PROBLEM: " + what);
  }

  static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : String.format(java.util.Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
  }

  static String describe(Fault fault) {
    if (fault instanceof Fault.Runtime r) {
      return switch (r.kind()) {
        case CHECKPOINT_WRITE -> "checkpoint-write-failure";
        case SLOW_RANK -> "slow-rank";
        default -> r.kind().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
      };
    }
    if (fault instanceof Fault.CassandraDown f) {
      return f.kill() ? "cassandra-kill" : "cassandra-stop";
    }
    if (fault instanceof Fault.Network f) {
      return switch (f.kind()) {
        case PARTITION -> f.oneWay() ? "partition-one-way" : "partition";
        case LOSS -> "loss";
        case BANDWIDTH -> "bandwidth";
        case DELAY -> "delay";
      };
    }
    return fault instanceof Fault.Kill ? "kill" : fault instanceof Fault.Stop ? "stop"
        : fault instanceof Fault.Hang ? "hang" : "restart";
  }
}
