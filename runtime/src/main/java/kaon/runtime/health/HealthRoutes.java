package kaon.runtime.health;

import java.util.List;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * {@code GET /alive} and {@code GET /ready} on the management port, in place of Pekko
 * Management's own health routes: those answer 500 with the first failing check's class name,
 * where an operator (and a load balancer's log) needs 503 and every reason in words. Named in
 * {@code pekko.management.http.routes} (see bootstrap.conf); Pekko Management creates it.
 */
public final class HealthRoutes implements ManagementRouteProvider {

  private final NodeHealth health;

  public HealthRoutes(ExtendedActorSystem system) {
    this.health = NodeHealth.get(Adapter.toTyped(system));
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    return Directives.get(() -> Directives.concat(
        Directives.path("alive", () -> Directives.complete(answer("alive", health.liveness()))),
        Directives.path("ready", () -> Directives.completeWithFuture(readiness()))));
  }

  private CompletionStage<HttpResponse> readiness() {
    return health.readiness().thenApply(problems -> answer("ready", problems));
  }

  /** 200 with {@code ok}, or 503 with one reason per line. */
  static HttpResponse answer(String ok, List<String> problems) {
    if (problems.isEmpty()) {
      return HttpResponse.create().withStatus(StatusCodes.OK).withEntity(ContentTypes.TEXT_PLAIN_UTF8, ok + "\n");
    }
    return HttpResponse.create().withStatus(StatusCodes.SERVICE_UNAVAILABLE)
        .withEntity(ContentTypes.TEXT_PLAIN_UTF8, "not " + ok + ":\n" + String.join("\n", problems) + "\n");
  }
}
