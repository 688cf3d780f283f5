package kaon.actors.metrics;

import java.util.List;
import java.util.Locale;

/**
 * What led to a generation, as one of a few words: a metric's label must take few values, and a
 * generation's reason is a sentence naming ranks, steps and addresses. The words are matched
 * against what Kaon itself writes in those sentences (JobCoordinator, Generations, GrowthWatch,
 * the all-reduce and the divergence guard).
 */
public final class GenerationReasons {

  /** Every category, in the order they are tried. */
  public static final List<String> ALL = List.of("submitted", "recovered", "node-lost", "deadline", "damaged-data",
      "diverged", "no-device", "grew", "rescaled", "other");

  private GenerationReasons() {}

  /** The category of a generation formed for {@code reason}. */
  public static String of(String reason) {
    String r = reason == null ? "" : reason.toLowerCase(Locale.ROOT);
    if (r.startsWith("job submitted")) {
      return "submitted";
    }
    if (r.contains("after the coordinator recovered") || r.contains("no longer trains generation")) {
      return "recovered";
    }
    if (r.contains("closed its connection") || r.contains("process is gone") || r.contains("was removed")
        || r.contains("node lost") || r.contains("unreachable")) {
      return "node-lost";
    }
    if (r.contains("missed its deadline") || r.contains("did not get ready in time") || r.contains("not responding")) {
      return "deadline";
    }
    if (r.contains("checksum") || r.contains("damaged")) {
      return "damaged-data";
    }
    if (r.contains("non-finite") || r.contains("times its typical")) {
      return "diverged";
    }
    if (r.contains("no device")) {
      return "no-device";
    }
    if (r.startsWith("growing from")) {
      return "grew";
    }
    if (r.startsWith("scaled to")) {
      return "rescaled";
    }
    return "other";
  }

  /** Whether a generation formed for {@code category} answered a fault (not a submission, growth or scaling). */
  public static boolean answersAFault(String category) {
    return !List.of("submitted", "grew", "rescaled").contains(category);
  }
}
