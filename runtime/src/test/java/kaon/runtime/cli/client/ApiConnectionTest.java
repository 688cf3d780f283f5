package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening connections; calls through them are covered against a real server elsewhere. */
class ApiConnectionTest {

  private static ApiConnection.Target tlsTrusting(Path pem) {
    return new ApiConnection.Target("127.0.0.1", 50051, Optional.empty(), true, Optional.of(pem));
  }

  @Test
  void opensWithTlsTrustingAPemCertificate() throws IOException, URISyntaxException {
    // A self-signed EC certificate (CN=kaon-test-ca), made with keytool for this test.
    Path pem = Path.of(getClass().getResource("test-ca.pem").toURI());
    try (ApiConnection api = ApiConnection.open(tlsTrusting(pem))) {
      assertEquals("127.0.0.1:50051", api.target().endpoint());
    }
  }

  @Test
  void aCertificateFileThatIsNotPemIsAClearError(@TempDir Path dir) throws IOException {
    Path notPem = Files.writeString(dir.resolve("ca.pem"), "not a certificate\n");
    IOException e = assertThrows(IOException.class, () -> ApiConnection.open(tlsTrusting(notPem)));
    assertTrue(e.getMessage().startsWith("the TLS CA file " + notPem + " "), e.getMessage());
    Path missing = dir.resolve("missing.pem");
    assertEquals("the TLS CA file " + missing + " does not exist",
        assertThrows(IOException.class, () -> ApiConnection.open(tlsTrusting(missing))).getMessage());
  }

  @Test
  void writesIpv6HostsInBrackets() {
    assertEquals("[::1]:50051", ApiConnection.Target.plaintext("::1", 50051, Optional.empty()).endpoint());
  }
}
