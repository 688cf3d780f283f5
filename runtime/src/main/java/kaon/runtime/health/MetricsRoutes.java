package kaon.runtime.health;

import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.CompletionStage;
import kaon.actors.metrics.KaonMetrics;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * {@code GET /metrics} on the management port: this node's {@link KaonMetrics} in Prometheus'
 * text format. The management port is the one every VM node serves anyway (bootstrap and health
 * use it), so Prometheus scrapes the same targets a load balancer probes. Named in {@code
 * pekko.management.http.routes} (see bootstrap.conf).
 *
 * <p>Before answering it asks Cassandra (both sessions, 2 s at most), so that {@code
 * kaon_cassandra_up} says what the node sees at that moment rather than at its last readiness
 * probe. The text is written off the route's thread, on the blocking dispatcher.
 */
public final class MetricsRoutes implements ManagementRouteProvider {

  private static final ContentType TEXT_FORMAT = ContentTypes.parse(PrometheusTextFormatWriter.CONTENT_TYPE);

  private final ActorSystem<?> system;
  private final KaonMetrics metrics;
  private final NodeHealth health;
  private final PrometheusTextFormatWriter writer = new PrometheusTextFormatWriter(false);

  public MetricsRoutes(ExtendedActorSystem system) {
    this.system = Adapter.toTyped(system);
    this.metrics = KaonMetrics.get(this.system);
    this.health = NodeHealth.get(this.system);
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    return Directives.get(() -> Directives.path("metrics", () -> Directives.completeWithFuture(scrape())));
  }

  private CompletionStage<HttpResponse> scrape() {
    return health.probeCassandra(metrics).thenApplyAsync(done -> {
      ByteArrayOutputStream out = new ByteArrayOutputStream(16 * 1024);
      try {
        writer.write(out, metrics.registry().scrape());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return HttpResponse.create().withEntity(TEXT_FORMAT, out.toByteArray());
    }, system.dispatchers().lookup(org.apache.pekko.actor.typed.DispatcherSelector.blocking()));
  }
}
