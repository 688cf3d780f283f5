package kaon.runtime.chaos;

import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import kaon.runtime.chaos.Observation.ClusterViews;
import kaon.runtime.chaos.Observation.GenerationFormed;
import kaon.runtime.chaos.Observation.JobEnded;
import kaon.runtime.chaos.Observation.JournalRead;
import kaon.runtime.chaos.Observation.RanksPlaced;

/**
 * Invariant 4, fencing: never two coordinators acting for one job (its journal's writers follow
 * each other and none comes back), never two ranks on one device, and one cluster at the end.
 */
final class Fencing {

  private Fencing() {}

  /** One writer after another: a writer that comes back after another wrote means two coordinators. */
  static void journalWriters(JobHistory job, List<String> bad, List<String> facts) {
    if (job.journal().isEmpty()) {
      bad.add("job " + job.jobId() + ": its journal was not read, so two writers cannot be ruled out");
      return;
    }
    List<JournalRead.WriterRun> runs = job.journal().get().runs();
    Set<String> done = new HashSet<>();
    String current = null;
    for (JournalRead.WriterRun run : runs) {
      if (!run.writer().equals(current) && !done.add(run.writer())) {
        bad.add("job " + job.jobId() + ": writer " + run.writer() + " wrote events " + run.first() + ".." + run.last()
            + " after another writer had taken over (two coordinators)");
      }
      current = run.writer();
    }
    facts.add("job " + job.jobId() + ": " + done.size() + " journal writers, each in turn");
  }

  /**
   * No device runs two ranks at once, within a job or across jobs. A job's placement counts from
   * when it was seen until its next generation forms (the old ranks released their devices before
   * that) or it ends.
   */
  static void devices(List<Observation> ordered, List<String> bad, List<String> facts) {
    Map<String, RanksPlaced> current = new LinkedHashMap<>();
    int samples = 0;
    for (Observation o : ordered) {
      if (o instanceof GenerationFormed g) {
        current.computeIfPresent(g.jobId(), (job, placed) -> placed.generation() < g.generation() ? null : placed);
      } else if (o instanceof JobEnded e) {
        current.remove(e.jobId());
      } else if (o instanceof RanksPlaced r) {
        samples++;
        current.put(r.jobId(), r);
        Map<String, String> owner = new HashMap<>();
        for (RanksPlaced placed : current.values()) {
          for (RanksPlaced.Rank rank : placed.ranks()) {
            if (rank.device().isEmpty()) {
              continue;
            }
            String device = rank.node() + " " + rank.device();
            String who = "job " + placed.jobId() + " generation " + placed.generation() + " rank " + rank.rank();
            String other = owner.putIfAbsent(device, who);
            if (other != null) {
              bad.add(String.format(Locale.ROOT, "at %d device %s was held by %s and by %s", r.atMillis(), device, other, who));
            }
          }
        }
      }
    }
    facts.add(samples + " placements seen, no device with two ranks");
  }

  static void cluster(List<Observation> ordered, List<String> bad, List<String> facts) {
    List<ClusterViews> views = ordered.stream().filter(ClusterViews.class::isInstance).map(ClusterViews.class::cast).toList();
    if (views.isEmpty()) {
      bad.add("the cluster's membership was never read");
      return;
    }
    ClusterViews last = views.get(views.size() - 1);
    boolean one = !last.views().isEmpty() && last.views().stream()
        .allMatch(v -> v.size() == last.expectedNodes() && new HashSet<>(v).equals(new HashSet<>(last.views().get(0))));
    if (one) {
      facts.add("one cluster of " + last.expectedNodes() + " at the end");
    } else {
      bad.add("the nodes do not agree on one cluster of " + last.expectedNodes() + ": " + last.views());
    }
  }
}
