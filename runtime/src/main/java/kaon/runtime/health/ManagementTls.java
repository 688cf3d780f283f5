package kaon.runtime.health;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;
import org.apache.pekko.http.javadsl.ConnectionContext;
import org.apache.pekko.http.javadsl.HttpsConnectionContext;

/**
 * TLS of the management port on VMs, from the same PEM files as the cluster port ({@code
 * kaon.cluster.tls}): the port serves HTTPS, and Cluster Bootstrap's probes of other nodes present
 * this node's certificate. {@code /alive} and {@code /ready} need no certificate, so a load
 * balancer or a person with {@code curl --cacert} can ask them; the bootstrap routes, which name
 * the cluster's members, answer only a peer whose certificate the cluster's CA signed (see {@link
 * BootstrapRoutes}).
 *
 * <p>The files are read again when one of them changes, at the next connection: certificates
 * rotate without a restart, as on the cluster port. A rotation caught half-written keeps the
 * previous context and tries again at the next connection.
 *
 * <p>The client side trusts the cluster's CA and does not match host names: contact points are
 * addresses from discovery, and the CA signs nothing but the cluster's nodes.
 */
public final class ManagementTls {

  private final Path certificate;
  private final Path privateKey;
  private final Path ca;
  private Loaded loaded;

  private record Loaded(SSLContext context, List<FileTime> stamps) {}

  /**
   * Reads the files once, so that a node with unusable ones refuses to start.
   *
   * @throws IllegalStateException naming the file and the problem
   */
  public ManagementTls(Path certificate, Path privateKey, Path ca) {
    this.certificate = certificate;
    this.privateKey = privateKey;
    this.ca = ca;
    try {
      loaded = load();
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      throw new IllegalStateException("cannot use the cluster's TLS files for the management port: " + e.getMessage(), e);
    }
  }

  /** For the management server: HTTPS that asks for, but does not require, a client certificate. */
  public HttpsConnectionContext server() {
    return ConnectionContext.httpsServer(() -> {
      SSLEngine engine = context().createSSLEngine();
      engine.setUseClientMode(false);
      engine.setWantClientAuth(true);
      return engine;
    });
  }

  /** For Cluster Bootstrap's probes: presents this node's certificate and trusts the cluster's CA. */
  public HttpsConnectionContext client() {
    return ConnectionContext.httpsClient((host, port) -> {
      SSLEngine engine = context().createSSLEngine(host, port);
      engine.setUseClientMode(true);
      return engine;
    });
  }

  /** The current context (server and client alike), read again first if a file changed since. */
  public synchronized SSLContext context() {
    try {
      if (!stamps().equals(loaded.stamps())) {
        loaded = load();
      }
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      // Most likely a rotation in progress; the previous files are still valid for a while.
      org.slf4j.LoggerFactory.getLogger(ManagementTls.class)
          .warn("keeping the management port's previous TLS files: reading the new ones failed: {}", e.toString());
    }
    return loaded.context();
  }

  private List<FileTime> stamps() throws IOException {
    List<FileTime> stamps = new ArrayList<>();
    for (Path file : List.of(certificate, privateKey, ca)) {
      stamps.add(Files.getLastModifiedTime(file));
    }
    return stamps;
  }

  private Loaded load() throws IOException, GeneralSecurityException {
    // Stamps first: a file that changes while it is read is read again at the next connection.
    List<FileTime> stamps = stamps();
    List<Certificate> chain = certificates(certificate);
    PrivateKey key = kaon.runtime.PemKeys.read(privateKey);
    KeyStore keys = KeyStore.getInstance("PKCS12");
    keys.load(null, null);
    char[] none = new char[0];
    keys.setKeyEntry("node", key, none, chain.toArray(new Certificate[0]));
    KeyManagerFactory keyManagers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    keyManagers.init(keys, none);
    KeyStore trusted = KeyStore.getInstance("PKCS12");
    trusted.load(null, null);
    int n = 0;
    for (Certificate authority : certificates(ca)) {
      trusted.setCertificateEntry("ca-" + n++, authority);
    }
    TrustManagerFactory trustManagers = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    trustManagers.init(trusted);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(keyManagers.getKeyManagers(), trustManagers.getTrustManagers(), null);
    return new Loaded(context, stamps);
  }

  private static List<Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(file)) {
      Collection<? extends Certificate> all = CertificateFactory.getInstance("X.509").generateCertificates(in);
      if (all.isEmpty()) {
        throw new GeneralSecurityException(file + " holds no certificate");
      }
      return List.copyOf(all);
    }
  }
}
