package kaon.actors.job;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What is degraded in a running job, by kind of problem, with the words an owner reads. The job's
 * status shows them as one line: the job-wide problems in the order of {@link Problem}, then each
 * rank's checkpoint problem in rank order. Not thread-safe; owned by one coordinator.
 */
final class JobHealth {

  /** Problems of the job as a whole. */
  enum Problem {
    /** Fewer devices than the job's minimum; the job waits for more. */
    WAITING_FOR_DEVICES,
    /** The journal does not answer, or another coordinator holds the job's lease. */
    JOURNAL,
    /** The checkpoint store does not answer while a generation looks for its state. */
    CHECKPOINT_READS
  }

  private final Map<Problem, String> problems = new EnumMap<>(Problem.class);
  /** Checkpoint (and model) writes failing, by rank of the current generation. */
  private final Map<Integer, String> ranks = new TreeMap<>();

  /** Records {@code problem}; true when that changed the line. */
  boolean set(Problem problem, String words) {
    return !words.equals(problems.put(problem, words));
  }

  /** Clears {@code problem}; true when it was there. */
  boolean clear(Problem problem) {
    return problems.remove(problem) != null;
  }

  boolean has(Problem problem) {
    return problems.containsKey(problem);
  }

  String get(Problem problem) {
    return problems.get(problem);
  }

  /** Records (or with empty {@code words}, clears) rank {@code rank}'s problem; true when that changed the line. */
  boolean setRank(int rank, String words) {
    String before = words.isEmpty() ? ranks.remove(rank) : ranks.put(rank, words);
    return words.isEmpty() ? before != null : !words.equals(before);
  }

  /** Forgets the ranks' problems: a new generation has new ranks. */
  void clearRanks() {
    ranks.clear();
  }

  /** The status line: empty when all is well. */
  String line() {
    List<String> all = new ArrayList<>(problems.values());
    all.addAll(ranks.values());
    return String.join("; ", all);
  }
}
