package kaon.runtime.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.ListMembersRequest;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TLS is configuration: a node given a certificate and key speaks only TLS. */
class GrpcTlsTest {

  @Test
  void aNodeWithACertificateServesTheApiOverTlsOnly(@TempDir Path dir) throws Exception {
    Path cert = dir.resolve("cert.pem");
    Path key = dir.resolve("key.pem");
    Process openssl = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", key.toString(), "-out", cert.toString(), "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1").redirectErrorStream(true).start();
    String opensslOutput = new String(openssl.getInputStream().readAllBytes());
    assertEquals(0, openssl.waitFor(), opensslOutput);

    var config = kaon.runtime.TestNodes.withOwnJournal(ConfigFactory.empty()
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef("tls-token"))
        .withValue("kaon.grpc.tls.certificate", ConfigValueFactory.fromAnyRef(cert.toString()))
        .withValue("kaon.grpc.tls.private-key", ConfigValueFactory.fromAnyRef(key.toString()))
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(1))
        .withFallback(ConfigFactory.load()));
    KaonNode.Running node = KaonNode.startLocal(config, TaskCatalog.load(getClass().getClassLoader()), line -> {});
    ActorSystem<Void> clients = ActorSystem.create(Behaviors.empty(), "tls-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    try {
      assertTrue(node.tls());
      KeyStore trusted = KeyStore.getInstance("PKCS12");
      trusted.load(null, null);
      try (var in = Files.newInputStream(cert)) {
        trusted.setCertificateEntry("kaon", CertificateFactory.getInstance("X.509").generateCertificate(in));
      }
      TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      factory.init(trusted);
      X509TrustManager trust = (X509TrustManager) factory.getTrustManagers()[0];

      ClusterServiceClient secure = ClusterServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clients).withTls(true).withTrustManager(trust), clients);
      var members = secure.listMembers().addHeader("authorization", "Bearer tls-token")
          .invoke(ListMembersRequest.getDefaultInstance()).toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertEquals(1, members.getMembersCount());
      secure.close();

      ClusterServiceClient plain = ClusterServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clients).withTls(false), clients);
      ExecutionException refused = assertThrows(ExecutionException.class, () -> plain.listMembers()
          .addHeader("authorization", "Bearer tls-token").invoke(ListMembersRequest.getDefaultInstance())
          .toCompletableFuture().get(30, TimeUnit.SECONDS));
      assertTrue(refused.getCause() instanceof StatusRuntimeException, refused.getCause().toString());
      plain.close();
    } finally {
      clients.terminate();
      node.system().terminate();
      node.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }
  }
}
