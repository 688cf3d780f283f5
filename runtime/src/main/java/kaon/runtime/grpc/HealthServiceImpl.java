package kaon.runtime.grpc;

import io.grpc.Status;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import kaon.protocol.health.v1.Health;
import kaon.protocol.health.v1.HealthCheckRequest;
import kaon.protocol.health.v1.HealthCheckResponse;
import kaon.protocol.health.v1.HealthCheckResponse.ServingStatus;
import kaon.protocol.v1.ClusterService;
import kaon.protocol.v1.JobService;
import kaon.runtime.health.NodeHealth;
import org.apache.pekko.NotUsed;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.stream.javadsl.Source;

/**
 * {@code grpc.health.v1.Health} on the API port: SERVING while the node is ready (the same
 * reasons as {@code /ready}), NOT_SERVING otherwise. No token: a probe says nothing about jobs.
 */
final class HealthServiceImpl implements Health {

  /** How often a Watch looks again; it sends only changes. */
  private static final Duration WATCH_INTERVAL = Duration.ofSeconds(2);

  private static final Set<String> SERVICES = Set.of("", JobService.name, ClusterService.name, Health.name);

  private final NodeHealth health;

  HealthServiceImpl(NodeHealth health) {
    this.health = health;
  }

  @Override
  public CompletionStage<HealthCheckResponse> check(HealthCheckRequest in) {
    if (!SERVICES.contains(in.getService())) {
      // The protocol's answer for a service the server does not know.
      return CompletableFuture.failedFuture(new GrpcServiceException(
          Status.NOT_FOUND.withDescription("unknown service \"" + in.getService() + "\"; known: " + SERVICES)));
    }
    return status().thenApply(HealthServiceImpl::response);
  }

  @Override
  public Source<HealthCheckResponse, NotUsed> watch(HealthCheckRequest in) {
    if (!SERVICES.contains(in.getService())) {
      return Source.single(response(ServingStatus.SERVICE_UNKNOWN));
    }
    return Source.tick(Duration.ZERO, WATCH_INTERVAL, NotUsed.getInstance())
        .mapAsync(1, tick -> status())
        .via(org.apache.pekko.stream.javadsl.Flow.<ServingStatus>create().statefulMapConcat(() -> {
          ServingStatus[] last = {null};
          return status -> {
            if (status == last[0]) {
              return java.util.List.of();
            }
            last[0] = status;
            return java.util.List.of(status);
          };
        }))
        .map(HealthServiceImpl::response)
        .mapMaterializedValue(cancellable -> NotUsed.getInstance());
  }

  private CompletionStage<ServingStatus> status() {
    return health.readiness().thenApply(problems -> problems.isEmpty() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  }

  private static HealthCheckResponse response(ServingStatus status) {
    return HealthCheckResponse.newBuilder().setStatus(status).build();
  }
}
