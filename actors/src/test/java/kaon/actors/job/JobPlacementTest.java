package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.Test;

/** Where a job's coordinator goes: off the node of sharding's singletons, and when it moves off. */
class JobPlacementTest {

  private static final Address A = new Address("pekko", "kaon", "10.0.0.1", 25520);
  private static final Address B = new Address("pekko", "kaon", "10.0.0.2", 25520);
  private static final Address C = new Address("pekko", "kaon", "10.0.0.3", 25520);
  private static final List<String> ROLES = List.of("coordinator", "worker");

  private static Map<Address, Integer> load(Address a, int ja, Address b, int jb) {
    Map<Address, Integer> m = new HashMap<>();
    m.put(a, ja);
    m.put(b, jb);
    return m;
  }

  @Test
  void aJobGoesToTheLeastLoadedNodeThatRunsNoSingleton() {
    // A runs the singletons: B and C share the jobs, A gets none while they are there.
    Map<Address, Integer> jobs = new HashMap<>(Map.of(A, 0, B, 3, C, 2));
    assertEquals(C, JobPlacement.choose(jobs, Set.of(A)));
    jobs.put(C, 3);
    assertEquals(B, JobPlacement.choose(jobs, Set.of(A)), "equal loads: the lowest address");
  }

  @Test
  void withOnlyTheSingletonsNodeLeftItTakesTheJob() {
    assertEquals(A, JobPlacement.choose(Map.of(A, 4), Set.of(A)));
    // Both nodes host a singleton (jobs' on one, workers' on the other): spread by load.
    assertEquals(B, JobPlacement.choose(load(A, 2, B, 1), Set.of(A, B)));
  }

  @Test
  void theSingletonsRunOnTheOldestUpMemberOfEachRole() {
    List<JobPlacement.Node> nodes = List.of(
        new JobPlacement.Node(A, Set.of("gateway", "worker"), 0, true),
        new JobPlacement.Node(B, Set.of("coordinator"), 1, false),   // joining: not up yet
        new JobPlacement.Node(C, Set.of("coordinator", "worker"), 2, true));
    assertEquals(Set.of(A, C), JobPlacement.singletonNodes(nodes, ROLES));
    List<JobPlacement.Node> allRoles = List.of(
        new JobPlacement.Node(B, Set.of("coordinator", "worker"), 1, true),
        new JobPlacement.Node(C, Set.of("coordinator", "worker"), 0, true));
    assertEquals(Set.of(C), JobPlacement.singletonNodes(allRoles, ROLES));
  }

  @Test
  void aJobIsMovedOffOnlyOnceItHasStayedThereForTheSettleTime() {
    Duration settle = Duration.ofSeconds(30);
    long t0 = 1_000_000_000L;
    Map<String, Long> since = Map.of("17", t0, "4", t0 + Duration.ofSeconds(5).toNanos());
    // Just after the oldest node died: the job there may be re-forming; it stays.
    assertEquals(Optional.empty(), JobPlacement.moveOff(since, t0 + Duration.ofSeconds(29).toNanos(), settle));
    // One at a time, the longest there first.
    assertEquals(Optional.of("17"), JobPlacement.moveOff(since, t0 + Duration.ofSeconds(40).toNanos(), settle));
  }
}
