package kaon.actors.job;

import java.util.List;

/**
 * One generation in a job's history, as its {@link JobCoordinator.GenerationStarted} event tells it.
 *
 * @param generation its number
 * @param worldSize its ranks
 * @param resumeStep the step it started at
 * @param reason why it was formed (the job started, a rank failed, the job grew or was scaled)
 * @param stateSource where its state came from: {@code init}, {@code checkpoint:<id>} or {@code
 *     memory:<worker>}
 * @param members its workers' member ids, in rank order
 * @param atMillis when it was formed (epoch ms; 0 for generations recorded before this was kept)
 */
public record GenerationInfo(
    long generation, int worldSize, long resumeStep, String reason, String stateSource, List<Integer> members, long atMillis)
    implements kaon.protocol.KryoWireMessage {

  public GenerationInfo {
    members = List.copyOf(members);
  }
}
