package kaon.runtime.grpc;

import java.io.IOException;
import java.nio.file.Files;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.metrics.KaonMetrics;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.health.v1.Health;
import kaon.protocol.health.v1.HealthHandlerFactory;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.ChaosService;
import kaon.protocol.v1.ChaosServicePowerApiHandlerFactory;
import kaon.protocol.v1.ClusterService;
import kaon.protocol.v1.ClusterServicePowerApiHandlerFactory;
import kaon.protocol.v1.JobService;
import kaon.protocol.v1.JobServicePowerApiHandlerFactory;
import kaon.runtime.console.ConsoleRoutes;
import kaon.runtime.health.NodeHealth;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.grpc.javadsl.ServerReflection;
import org.apache.pekko.grpc.javadsl.ServiceHandler;
import org.apache.pekko.http.javadsl.ConnectionContext;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.ServerBuilder;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.japi.function.Function;

/**
 * The gRPC gateway of a node: {@code JobService}, {@code ClusterService}, the standard health
 * service (no token) and server reflection
 * (so that generic tools such as grpcurl can list and call them) on one HTTP/2 port, with TLS
 * when a certificate is configured; the web console ({@link ConsoleRoutes}) on the same port.
 */
public final class GrpcServer {

  private GrpcServer() {}

  /**
   * Binds the gateway; completes with the binding (its port, when 0 was asked for). Models are
   * streamed from {@code store}.
   */
  public static CompletionStage<ServerBinding> start(
      ActorSystem<?> system, GrpcSettings settings, BearerToken token, TaskCatalog catalog, CheckpointStore store) {
    ClusterServiceImpl cluster = new ClusterServiceImpl(system, token, settings);
    JobServiceImpl jobs = new JobServiceImpl(system, token, catalog, settings, cluster::freeDevices, store);
    List<Function<HttpRequest, CompletionStage<HttpResponse>>> services = new ArrayList<>(List.of(
        JobServicePowerApiHandlerFactory.create(jobs, system),
        ClusterServicePowerApiHandlerFactory.create(cluster, system),
        HealthHandlerFactory.create(new HealthServiceImpl(NodeHealth.get(system)), system)));
    List<org.apache.pekko.grpc.ServiceDescription> described =
        new ArrayList<>(List.of(JobService.description, ClusterService.description, Health.description));
    if (RuntimeFaults.get(system).enabled()) {
      // Its own token, and no default: a node that accepts faults must not be open to them.
      if (settings.chaosToken().isEmpty()) {
        throw new IllegalArgumentException("kaon.chaos.runtime-faults.enabled is on but kaon.chaos.token (KAON_CHAOS_TOKEN) "
            + "is empty: the chaos service needs a token of its own");
      }
      services.add(ChaosServicePowerApiHandlerFactory.create(new ChaosServiceImpl(system, BearerToken.of(settings.chaosToken())),
          system));
      described.add(ChaosService.description);
    }
    services.add(ServerReflection.create(described, system));
    @SuppressWarnings("unchecked")
    Function<HttpRequest, CompletionStage<HttpResponse>> handler =
        ServiceHandler.concatOrNotFound(services.toArray(new Function[0]));
    // The web console shares the port and the token: a browser speaks HTTP/1.1 to it, gRPC
    // clients HTTP/2, and the paths do not overlap.
    Function<HttpRequest, CompletionStage<HttpResponse>> console = new ConsoleRoutes(jobs, cluster).route().seal().handler(system);
    Function<HttpRequest, CompletionStage<HttpResponse>> api = measured(handler, described, KaonMetrics.get(system));
    ServerBuilder builder = Http.get(system).newServerAt(settings.host(), settings.port());
    if (settings.tls()) {
      builder = builder.enableHttps(ConnectionContext.httpsServer(sslContext(settings)));
    }
    Function<HttpRequest, CompletionStage<HttpResponse>> both =
        request -> ConsoleRoutes.handles(request.getUri().path()) ? console.apply(request) : api.apply(request);
    return builder.bind(both);
  }

  /**
   * {@code handler}, each request counted in the node's metrics by method and status. The method
   * is the request's path when it names a method of {@code services} ("/kaon.v1.JobService/SubmitJob"),
   * "reflection" for server reflection, else "other", so that a client probing paths cannot grow
   * the label's values. A status in the
   * response's headers is an error answered at once (gRPC's trailers-only form); otherwise the
   * call got as far as its answer, counted as 0 (OK), whatever its trailer says later.
   */
  static Function<HttpRequest, CompletionStage<HttpResponse>> measured(
      Function<HttpRequest, CompletionStage<HttpResponse>> handler, List<org.apache.pekko.grpc.ServiceDescription> services,
      KaonMetrics metrics) {
    java.util.Set<String> methods = new java.util.HashSet<>();
    for (org.apache.pekko.grpc.ServiceDescription service : services) {
      for (var described : service.descriptor().getServices()) {
        described.getMethods().forEach(m -> methods.add("/" + described.getFullName() + "/" + m.getName()));
      }
    }
    return request -> {
      long start = System.nanoTime();
      String path = request.getUri().path();
      String method = methods.contains(path) ? path : path.startsWith("/grpc.reflection.") ? "reflection" : "other";
      return handler.apply(request).whenComplete((response, error) -> {
        String code = error != null ? "13"
            : response.getHeader("grpc-status").map(h -> h.value()).orElse("0");
        metrics.grpcRequest(method, code, System.nanoTime() - start);
      });
    };
  }

  private static SSLContext sslContext(GrpcSettings settings) {
    try {
      CertificateFactory certificates = CertificateFactory.getInstance("X.509");
      Certificate[] chain;
      try (var in = Files.newInputStream(settings.tlsCertificate())) {
        chain = certificates.generateCertificates(in).toArray(Certificate[]::new);
      }
      PrivateKey key = kaon.runtime.PemKeys.read(settings.tlsPrivateKey());
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      char[] password = new char[0];
      store.setKeyEntry("kaon", key, password, chain);
      KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      keys.init(store, password);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(keys.getKeyManagers(), null, null);
      return context;
    } catch (IOException | java.security.GeneralSecurityException e) {
      throw new IllegalArgumentException("kaon.grpc.tls: cannot load " + settings.tlsCertificate() + " and "
          + settings.tlsPrivateKey() + " (PEM certificate chain, and a key in PKCS#8, PKCS#1 or SEC 1): " + e.getMessage(), e);
    }
  }
}
