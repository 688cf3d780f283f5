package kaon.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Keys as openssl writes them in each PEM form are read and can sign. */
class PemKeysTest {

  @TempDir
  Path dir;

  @Test
  void readsPkcs8Pkcs1AndSec1Keys() throws Exception {
    assertSigns(openssl("pkcs8-rsa.pem", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
        "BEGIN PRIVATE KEY", "RSA", "SHA256withRSA");
    assertSigns(openssl("pkcs1-rsa.pem", "genrsa", "-traditional", "2048"), "BEGIN RSA PRIVATE KEY", "RSA", "SHA256withRSA");
    assertSigns(openssl("pkcs8-ec.pem", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
        "BEGIN PRIVATE KEY", "EC", "SHA256withECDSA");
    // openssl ecparam -genkey writes the curve's block first, then the SEC 1 key.
    assertSigns(openssl("sec1-ec.pem", "ecparam", "-name", "secp384r1", "-genkey"), "BEGIN EC PRIVATE KEY", "EC",
        "SHA384withECDSA");
  }

  @Test
  void aFileWithoutAKeySaysWhichFormsItReads() throws Exception {
    Path cert = dir.resolve("not-a-key.pem");
    Files.writeString(cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> PemKeys.read(cert));
    assertTrue(e.getMessage().contains("BEGIN RSA PRIVATE KEY"), e.getMessage());
  }

  private void assertSigns(Path pem, String form, String algorithm, String signature) throws Exception {
    assertTrue(Files.readString(pem).contains(form), Files.readString(pem));
    PrivateKey key = PemKeys.read(pem);
    assertEquals(algorithm, key.getAlgorithm(), pem.toString());
    Signature signer = Signature.getInstance(signature);
    signer.initSign(key);
    signer.update("kaon".getBytes(StandardCharsets.UTF_8));
    assertTrue(signer.sign().length > 0);
  }

  private Path openssl(String file, String... args) throws Exception {
    Path out = dir.resolve(file);
    // openssl SUBCOMMAND -out FILE OPTIONS: genrsa takes its key size last.
    List<String> command = new ArrayList<>(List.of("openssl", args[0], "-out", out.toString()));
    command.addAll(List.of(args).subList(1, args.length));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), String.join(" ", command) + ": " + said);
    return out;
  }
}
