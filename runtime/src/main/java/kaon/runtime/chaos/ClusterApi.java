package kaon.runtime.chaos;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import kaon.protocol.v1.ArmedFault;
import kaon.protocol.v1.ChaosServiceClient;
import kaon.protocol.v1.ClearFaultsRequest;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.InjectFaultRequest;
import kaon.protocol.v1.ListFaultsRequest;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.RuntimeFault;
import kaon.protocol.v1.SubmitJobRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;

/**
 * A chaos run's view of the cluster through its public API: a client per node, and calls that go
 * to any node that answers, since any of them may be down, hung or cut off at the moment.
 */
final class ClusterApi implements AutoCloseable {

  private final ActorSystem<Void> system;
  private final List<JobServiceClient> jobs = new ArrayList<>();
  private final List<ClusterServiceClient> clusters = new ArrayList<>();
  private final List<ChaosServiceClient> chaos = new ArrayList<>();
  private final String bearer;
  private final String chaosBearer;

  ClusterApi(ChaosCluster cluster) {
    this.system = ActorSystem.create(Behaviors.empty(), "chaos-client",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING\npekko.stdout-loglevel = WARNING")
            .withFallback(ConfigFactory.load()));
    this.bearer = "Bearer " + cluster.token();
    this.chaosBearer = "Bearer " + cluster.chaosToken();
    for (int k = 1; k <= cluster.size(); k++) {
      String[] hostPort = cluster.apiEndpoint(k).split(":");
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt(hostPort[0], Integer.parseInt(hostPort[1]), system)
          .withTls(false).withDeadline(Duration.ofSeconds(20));
      jobs.add(JobServiceClient.create(settings, system));
      clusters.add(ClusterServiceClient.create(settings, system));
      chaos.add(ChaosServiceClient.create(settings.withDeadline(Duration.ofSeconds(5)), system));
    }
  }

  /**
   * Arms {@code fault} on every node that answers: the id it got on each, by node (from 1). A node
   * that is down or hung does not get it, and one restarted later has lost it (faults live in
   * memory); the strikes tell whether it mattered.
   */
  Map<Integer, Long> arm(RuntimeFault fault) {
    Map<Integer, Long> ids = new TreeMap<>();
    for (int k = 0; k < chaos.size(); k++) {
      try {
        ids.put(k + 1, chaos.get(k).injectFault().addHeader("authorization", chaosBearer)
            .invoke(InjectFaultRequest.newBuilder().setFault(fault).build()).toCompletableFuture()
            .get(10, TimeUnit.SECONDS).getId());
      } catch (Exception e) {
        // down, hung or restarting: the fault strikes the ranks of the others
      }
    }
    return ids;
  }

  /** How often the faults {@code ids} (by node) struck, summed over the nodes that answer now. */
  long strikes(Map<Integer, Long> ids) {
    long total = 0;
    for (Map.Entry<Integer, Long> e : ids.entrySet()) {
      try {
        total += chaos.get(e.getKey() - 1).listFaults().addHeader("authorization", chaosBearer)
            .invoke(ListFaultsRequest.getDefaultInstance()).toCompletableFuture().get(10, TimeUnit.SECONDS)
            .getFaultsList().stream().filter(f -> f.getId() == e.getValue()).mapToLong(ArmedFault::getStrikes).sum();
      } catch (Exception ignored) {
        // that node is down now; its strikes struck all the same, but cannot be counted
      }
    }
    return total;
  }

  /** Disarms every runtime fault on every node that answers (the end of a run). */
  void clearFaults() {
    for (ChaosServiceClient c : chaos) {
      try {
        c.clearFaults().addHeader("authorization", chaosBearer).invoke(ClearFaultsRequest.getDefaultInstance())
            .toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (Exception ignored) {
        // down: it lost its faults with its memory
      }
    }
  }

  /** The job as the first node to answer within {@code seconds} each sees it. */
  Optional<Job> job(String jobId, int seconds) {
    return anyNode(c -> c.getJob().addHeader("authorization", bearer)
        .invoke(GetJobRequest.newBuilder().setJobId(jobId).build()), seconds);
  }

  /** Submits (idempotent by its request id, so a retry after a node died is safe). */
  Optional<Job> submit(SubmitJobRequest request, int seconds) {
    return anyNode(c -> c.submitJob().addHeader("authorization", bearer).invoke(request), seconds);
  }

  /** Each node's view of the members that are Up; "unreachable" for a node that did not answer. */
  List<List<String>> views() {
    List<List<String>> views = new ArrayList<>();
    for (ClusterServiceClient c : clusters) {
      Set<String> up = new TreeSet<>();
      try {
        c.listMembers().addHeader("authorization", bearer).invoke(ListMembersRequest.getDefaultInstance())
            .toCompletableFuture().get(20, TimeUnit.SECONDS).getMembersList().stream()
            .filter(m -> m.getStatus().equals("Up")).forEach(m -> up.add(m.getAddress()));
      } catch (Exception e) {
        up.add("unreachable");
      }
      views.add(List.copyOf(up));
    }
    return views;
  }

  private <T> Optional<T> anyNode(Function<JobServiceClient, CompletionStage<T>> call, int seconds) {
    List<JobServiceClient> order = new ArrayList<>(jobs);
    // Not the run's seeded random: several threads call, and the fault schedule must repeat.
    Collections.shuffle(order, ThreadLocalRandom.current());
    for (JobServiceClient client : order) {
      try {
        return Optional.of(call.apply(client).toCompletableFuture().get(seconds, TimeUnit.SECONDS));
      } catch (Exception e) {
        // that node is down, hung or cannot answer now: try another
      }
    }
    return Optional.empty();
  }

  @Override
  public void close() {
    system.terminate();
  }
}
