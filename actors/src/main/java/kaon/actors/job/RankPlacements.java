package kaon.actors.job;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import kaon.actors.worker.WorkerReport;

/**
 * Where the ranks of a job's newest generation run, from their {@link WorkerReport.Placed}
 * reports. Not persisted: a coordinator that recovers hears it again from the ranks that re-attach,
 * and a generation's placement is news only while it runs (and, once the job ended, of its last
 * generation). Not thread-safe; owned by one coordinator.
 */
final class RankPlacements {

  private long generation = -1;
  private final Map<Integer, WorkerReport.Placed> byRank = new TreeMap<>();

  /**
   * Records what a rank said: a newer generation replaces what was known, an older one is late.
   * Whether that changed what is known.
   */
  boolean placed(WorkerReport.Placed placed) {
    if (placed.generation() < generation) {
      return false;
    }
    if (placed.generation() > generation) {
      generation = placed.generation();
      byRank.clear();
    }
    return !placed.equals(byRank.put(placed.rank(), placed));
  }

  /** The ranks of {@code course}'s generation (none before the job was submitted). */
  List<RankPlacement> of(JobState.Course course) {
    return course == null ? List.of() : of(course.generation(), course.members());
  }

  /**
   * The ranks of {@code current} in rank order, each with its worker's member id from {@code
   * members} (in rank order); empty when what is known is of another generation.
   */
  List<RankPlacement> of(long current, List<Integer> members) {
    if (current != generation) {
      return List.of();
    }
    return byRank.values().stream()
        .map(p -> new RankPlacement(p.rank(), p.rank() < members.size() ? members.get(p.rank()) : -1, p.node(),
            p.device(), p.edge(), p.how()))
        .toList();
  }
}
