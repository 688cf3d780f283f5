package kaon.runtime.grpc;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The gRPC gateway of a node; read once from {@code kaon.grpc}.
 *
 * @param enabled whether this node serves the API (the gateway role)
 * @param host interface to bind
 * @param port port to bind; 0 picks a free one
 * @param token bearer token every call must carry; empty means none is required
 * @param tokenFile where the local token lives (read, or generated when {@code generateToken})
 * @param generateToken write a random token to {@code tokenFile} when there is none (local mode)
 * @param tlsCertificate PEM certificate chain; with {@code tlsPrivateKey} the API speaks TLS
 * @param tlsPrivateKey PEM PKCS#8 private key
 * @param askTimeout how long a call waits for the job or cluster to answer
 * @param maxSpecBytes largest job spec accepted
 * @param chaosToken the token of the admin-only {@code ChaosService} ({@code kaon.chaos.token}),
 *     served only where runtime faults are enabled, and then required
 */
public record GrpcSettings(
    boolean enabled,
    String host,
    int port,
    String token,
    Path tokenFile,
    boolean generateToken,
    Path tlsCertificate,
    Path tlsPrivateKey,
    Duration askTimeout,
    int maxSpecBytes,
    String chaosToken) {

  /** Reads {@code kaon.grpc}. */
  public static GrpcSettings fromConfig(Config config) {
    Config c = config.getConfig("kaon.grpc");
    String tokenFile = c.getString("auth.token-file");
    String cert = c.getString("tls.certificate");
    String key = c.getString("tls.private-key");
    if (cert.isBlank() != key.isBlank()) {
      throw new IllegalArgumentException("kaon.grpc.tls needs both certificate and private-key, or neither");
    }
    return new GrpcSettings(
        c.getBoolean("enabled"),
        c.getString("interface"),
        c.getInt("port"),
        c.getString("auth.token"),
        tokenFile.isBlank() ? defaultTokenFile() : Path.of(tokenFile),
        c.getBoolean("auth.generate-local-token"),
        cert.isBlank() ? null : Path.of(cert),
        key.isBlank() ? null : Path.of(key),
        c.getDuration("ask-timeout"),
        (int) c.getBytes("max-spec-bytes").longValue(),
        config.getString("kaon.chaos.token").trim());
  }

  /** {@code $XDG_CONFIG_HOME/kaon/token}, or {@code ~/.config/kaon/token}. */
  public static Path defaultTokenFile() {
    String xdg = System.getenv("XDG_CONFIG_HOME");
    Path base = xdg == null || xdg.isBlank() ? Path.of(System.getProperty("user.home"), ".config") : Path.of(xdg);
    return base.resolve("kaon").resolve("token");
  }

  /** The same settings on another port and with another token (tests, the local launcher). */
  public GrpcSettings with(int newPort, String newToken) {
    return new GrpcSettings(enabled, host, newPort, newToken, tokenFile, false, tlsCertificate, tlsPrivateKey, askTimeout, maxSpecBytes,
        chaosToken);
  }

  /** True when the API speaks TLS. */
  public boolean tls() {
    return tlsCertificate != null;
  }
}
