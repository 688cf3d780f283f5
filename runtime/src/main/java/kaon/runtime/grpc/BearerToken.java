package kaon.runtime.grpc;

import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;

/**
 * The bearer token the API requires, and the check of each call against it. In local mode the
 * token is generated once into the user's config directory (readable by its owner only), where
 * the CLI finds it.
 */
public final class BearerToken {

  private final byte[] expected;

  private BearerToken(String token) {
    this.expected = token.isEmpty() ? null : ("Bearer " + token).getBytes(StandardCharsets.UTF_8);
  }

  /** The configured token, else the token file's, else (local mode) a new one written there. */
  public static BearerToken resolve(GrpcSettings settings) throws IOException {
    if (!settings.token().isBlank()) {
      return new BearerToken(settings.token().trim());
    }
    Path file = settings.tokenFile();
    if (Files.isRegularFile(file)) {
      return new BearerToken(Files.readString(file).trim());
    }
    if (!settings.generateToken()) {
      return new BearerToken("");
    }
    byte[] random = new byte[32];
    new SecureRandom().nextBytes(random);
    String token = HexFormat.of().formatHex(random);
    Files.createDirectories(file.getParent());
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, token + "\n");
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    return new BearerToken(token);
  }

  /** A token that every call must carry exactly; empty means no token is required. */
  public static BearerToken of(String token) {
    return new BearerToken(token);
  }

  /** True when calls must carry a token. */
  public boolean required() {
    return expected != null;
  }

  /**
   * Refuses a call without the token.
   *
   * @throws GrpcServiceException UNAUTHENTICATED, saying whether the token was missing or wrong
   */
  public void check(Metadata metadata) {
    if (expected == null) {
      return;
    }
    String header = metadata.getText("authorization").orElse(null);
    if (header == null) {
      throw new GrpcServiceException(Status.UNAUTHENTICATED.withDescription(
          "missing bearer token: send 'authorization: Bearer <token>' (the local token is in " + GrpcSettings.defaultTokenFile() + ")"));
    }
    // Constant time: a comparison that stops at the first difference leaks the token's prefix.
    if (!MessageDigest.isEqual(expected, header.trim().getBytes(StandardCharsets.UTF_8))) {
      throw new GrpcServiceException(Status.UNAUTHENTICATED.withDescription("invalid bearer token"));
    }
  }
}
