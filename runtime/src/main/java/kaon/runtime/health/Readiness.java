package kaon.runtime.health;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether a node is ready to take its share of the cluster's work, and if not, why. A pure
 * function of what was observed ({@link Facts}), so that each reason is tested without a node.
 */
public final class Readiness {

  private Readiness() {}

  /**
   * What a readiness probe observed.
   *
   * @param memberStatus this node's status in the cluster (Pekko's {@code MemberStatus}, e.g. "Up")
   * @param journalProblem why the journal's session did not answer, or null when it did
   * @param checkpointProblem why the checkpoint store's session did not answer, or null
   * @param dataDirProblem why the worker's data directory is not usable, or null (also null on a
   *     node without the worker role)
   * @param gateway the node serves the API
   * @param apiBound the API is bound (meaningful only on a gateway)
   */
  public record Facts(String memberStatus, String journalProblem, String checkpointProblem, String dataDirProblem,
      boolean gateway, boolean apiBound) {}

  /** Why the node is not ready, one line each; empty when it is. */
  public static List<String> problems(Facts facts) {
    List<String> problems = new ArrayList<>();
    if (!"Up".equals(facts.memberStatus())) {
      problems.add("cluster member status is " + facts.memberStatus() + ", not Up");
    }
    if (facts.journalProblem() != null) {
      problems.add("journal session: " + facts.journalProblem());
    }
    if (facts.checkpointProblem() != null) {
      problems.add("checkpoint session: " + facts.checkpointProblem());
    }
    if (facts.dataDirProblem() != null) {
      problems.add("data directory: " + facts.dataDirProblem());
    }
    if (facts.gateway() && !facts.apiBound()) {
      problems.add("the gRPC API is not bound yet");
    }
    return problems;
  }
}
