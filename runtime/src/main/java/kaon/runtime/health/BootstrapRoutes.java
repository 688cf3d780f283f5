package kaon.runtime.health;

import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.http.javadsl.model.AttributeKeys;
import org.apache.pekko.http.javadsl.model.SslSessionInfo;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.server.directives.RouteAdapter;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * Cluster Bootstrap's routes ({@code /bootstrap/seed-nodes}, which other nodes probe to find the
 * cluster), in place of the library's own entry: on a management port that serves HTTPS they
 * answer only a client that presented a certificate of the cluster's CA, that is another node.
 * Anyone else gets 403 and learns nothing about the members; {@code /alive} and {@code /ready} stay
 * open to all. On plain HTTP (the local mode, on loopback) the routes are the library's as they are.
 * Named in {@code pekko.management.http.routes} (see bootstrap.conf); Pekko Management creates it.
 */
public final class BootstrapRoutes implements ManagementRouteProvider {

  private final ClusterBootstrap bootstrap;

  public BootstrapRoutes(ExtendedActorSystem system) {
    this.bootstrap = ClusterBootstrap.get(system);
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    // Also tells Cluster Bootstrap its own contact point, the management server's address.
    Route routes = RouteAdapter.asJava(bootstrap.routes(
        org.apache.pekko.management.scaladsl.ManagementRouteProviderSettings.apply(
            org.apache.pekko.http.scaladsl.model.Uri.apply(settings.selfBaseUri().toString()), settings.readOnly())));
    if (settings.httpsConnectionContext().isEmpty()) {
      return routes;
    }
    return Directives.pathPrefixTest("bootstrap", () -> Directives.optionalAttribute(AttributeKeys.sslSession,
        session -> session.map(SslSessionInfo::getSession).filter(BootstrapRoutes::hasVerifiedPeer).isPresent()
            ? routes
            : Directives.complete(StatusCodes.FORBIDDEN, "the bootstrap routes answer the cluster's nodes only\n")));
  }

  /** Whether the client presented a certificate that the server's trust manager accepted. */
  private static boolean hasVerifiedPeer(SSLSession session) {
    try {
      return session.getPeerCertificates().length > 0;
    } catch (SSLPeerUnverifiedException e) {
      return false;
    }
  }
}
