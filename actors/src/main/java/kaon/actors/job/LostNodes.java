package kaon.actors.job;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Nodes whose process a job's coordinator saw end ({@link kaon.actors.liveness.NodeLiveness}),
 * so that re-forming does not wait for what is known: the survey asks no member there which
 * state it holds and the census does not wait for the node's agent. The cluster still lists such
 * a node for seconds (until it is downed and removed); once it is gone from there, or after
 * {@code memory}, or when a node joins at its address again, it is forgotten. Pure, with the
 * time passed in; owned by one coordinator.
 */
final class LostNodes {

  private final Duration memory;
  /** Address -> when it was lost (nanoTime). */
  private final Map<String, Long> lost = new HashMap<>();

  LostNodes(Duration memory) {
    this.memory = memory;
  }

  /** {@code node}'s process ended at {@code nowNanos}. */
  void lost(String node, long nowNanos) {
    lost.put(node, nowNanos);
  }

  /** A node joined at {@code node}: a new process there, which nothing is known against. */
  void joined(String node) {
    lost.remove(node);
  }

  /** The nodes lost within the memory before {@code nowNanos}, in order; older ones are forgotten. */
  Set<String> current(long nowNanos) {
    lost.values().removeIf(at -> nowNanos - at > memory.toNanos());
    return new TreeSet<>(lost.keySet());
  }

  /** The ranks of {@code placed} that run on one of {@code nodes}, in rank order. */
  static List<RankPlacement> on(Set<String> nodes, List<RankPlacement> placed) {
    return placed.stream().filter(p -> nodes.contains(p.node()))
        .sorted(java.util.Comparator.comparingInt(RankPlacement::rank)).toList();
  }
}
