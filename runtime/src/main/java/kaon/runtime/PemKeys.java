package kaon.runtime;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.pekko.pki.pem.DERPrivateKeyLoader;
import org.apache.pekko.pki.pem.PEMDecoder;

/**
 * Reads a private key from a PEM file in any of the forms tools write: PKCS#8 ({@code BEGIN PRIVATE
 * KEY}, RSA or EC: openssl genpkey, most CAs), PKCS#1 ({@code BEGIN RSA PRIVATE KEY}: openssl
 * genrsa -traditional, older tooling) and SEC 1 ({@code BEGIN EC PRIVATE KEY}: openssl ecparam
 * -genkey, cert-manager's EC keys). Pekko's loader reads the first two for RSA only; a SEC 1 key is
 * rewrapped as PKCS#8, which the JDK reads. Other blocks in the file (openssl ecparam's {@code EC
 * PARAMETERS}) are skipped.
 */
public final class PemKeys {

  private static final Pattern BLOCK =
      Pattern.compile("-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \\1-----", Pattern.DOTALL);
  /** The DER of OID 1.2.840.10045.2.1, id-ecPublicKey: the algorithm of an EC key in PKCS#8. */
  private static final byte[] EC_PUBLIC_KEY = {0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01};

  private PemKeys() {}

  /**
   * The private key in {@code file}.
   *
   * @throws GeneralSecurityException naming the forms it reads, when it holds none of them
   */
  public static PrivateKey read(Path file) throws IOException, GeneralSecurityException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    Matcher block = BLOCK.matcher(text);
    if (!block.find()) {
      throw new GeneralSecurityException(file + " holds no PEM private key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY"
          + " or BEGIN EC PRIVATE KEY)");
    }
    PEMDecoder.DERData der = PEMDecoder.decode(block.group());
    switch (der.label()) {
      case "RSA PRIVATE KEY":
        return DERPrivateKeyLoader.load(der);
      case "PRIVATE KEY":
        return pkcs8(der.bytes());
      case "EC PRIVATE KEY":
        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(sec1ToPkcs8(der.bytes())));
      default:
        throw new GeneralSecurityException(file + ": a " + der.label() + " is not a key Kaon reads (PKCS#8, PKCS#1 or"
            + " SEC 1; an encrypted key must be decrypted first: openssl pkey -in KEY -out PLAIN)");
    }
  }

  private static PrivateKey pkcs8(byte[] der) throws GeneralSecurityException {
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    try {
      return KeyFactory.getInstance("RSA").generatePrivate(spec);
    } catch (InvalidKeySpecException notRsa) {
      return KeyFactory.getInstance("EC").generatePrivate(spec);
    }
  }

  /**
   * SEC 1's ECPrivateKey (version, key, [0] curve, [1] public key) inside PKCS#8's PrivateKeyInfo
   * (version 0, the algorithm id-ecPublicKey with the curve, the ECPrivateKey as an octet string).
   */
  static byte[] sec1ToPkcs8(byte[] sec1) throws GeneralSecurityException {
    byte[] curve = curveOid(sec1);
    ByteArrayOutputStream algorithm = new ByteArrayOutputStream();
    algorithm.writeBytes(EC_PUBLIC_KEY);
    algorithm.writeBytes(curve);
    ByteArrayOutputStream info = new ByteArrayOutputStream();
    info.writeBytes(new byte[] {0x02, 0x01, 0x00});
    info.writeBytes(tlv(0x30, algorithm.toByteArray()));
    info.writeBytes(tlv(0x04, sec1));
    return tlv(0x30, info.toByteArray());
  }

  /** The whole DER of the curve's OID in SEC 1's [0] parameters. */
  private static byte[] curveOid(byte[] sec1) throws GeneralSecurityException {
    try {
      int[] at = {0};
      expect(sec1, at, 0x30);
      length(sec1, at);
      skip(sec1, at, 0x02); // version
      skip(sec1, at, 0x04); // the private key
      expect(sec1, at, 0xa0);
      length(sec1, at);
      int start = at[0];
      expect(sec1, at, 0x06);
      int oidLength = length(sec1, at);
      return java.util.Arrays.copyOfRange(sec1, start, at[0] + oidLength);
    } catch (ArrayIndexOutOfBoundsException e) {
      throw new GeneralSecurityException("an EC PRIVATE KEY that ends early");
    }
  }

  private static void expect(byte[] der, int[] at, int tag) throws GeneralSecurityException {
    if ((der[at[0]] & 0xff) != tag) {
      throw new GeneralSecurityException(String.format("an EC PRIVATE KEY without its named curve (tag %02x where"
          + " %02x was expected; explicit curve parameters are not read)", der[at[0]] & 0xff, tag));
    }
    at[0]++;
  }

  private static void skip(byte[] der, int[] at, int tag) throws GeneralSecurityException {
    expect(der, at, tag);
    int content = length(der, at); // read first: it moves at[0] past the length's own bytes
    at[0] += content;
  }

  /** Reads a DER length at {@code at}, leaving {@code at} on the content. */
  private static int length(byte[] der, int[] at) {
    int first = der[at[0]++] & 0xff;
    if (first < 0x80) {
      return first;
    }
    int length = 0;
    for (int i = 0; i < (first & 0x7f); i++) {
      length = (length << 8) | (der[at[0]++] & 0xff);
    }
    return length;
  }

  private static byte[] tlv(int tag, byte[] content) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(tag);
    int n = content.length;
    if (n < 0x80) {
      out.write(n);
    } else if (n < 0x100) {
      out.write(0x81);
      out.write(n);
    } else {
      out.write(0x82);
      out.write(n >> 8);
      out.write(n & 0xff);
    }
    out.writeBytes(content);
    return out.toByteArray();
  }
}
