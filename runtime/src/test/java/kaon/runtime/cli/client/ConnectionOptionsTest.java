package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

class ConnectionOptionsTest {

  @Command(name = "probe")
  static final class Probe {
    @Mixin ConnectionOptions connection;
  }

  /** An empty config home, so the tests never read a real node's token. */
  @TempDir Path config;

  private Map<String, String> env(String... pairs) {
    Map<String, String> env = new java.util.HashMap<>(Map.of("XDG_CONFIG_HOME", config.toString()));
    for (int i = 0; i < pairs.length; i += 2) {
      env.put(pairs[i], pairs[i + 1]);
    }
    return env;
  }

  private static ApiConnection.Target target(Map<String, String> env, String... args) throws IOException {
    Probe probe = new Probe();
    new CommandLine(probe).parseArgs(args);
    return probe.connection.target(env);
  }

  @Test
  void severalEndpointsAreTriedInTheOrderGiven() throws IOException {
    Probe probe = new Probe();
    new CommandLine(probe).parseArgs("--endpoint", "10.0.0.11:50051,10.0.0.12:50051, [::1]:7000");
    assertEquals(java.util.List.of("10.0.0.11:50051", "10.0.0.12:50051", "[::1]:7000"),
        probe.connection.targets(env("KAON_TOKEN", "t")).stream().map(ApiConnection.Target::endpoint).toList());
    assertEquals(java.util.List.of("a:1", "b:2"),
        targetsOf(env("KAON_ENDPOINT", "a:1,b:2")));
  }

  private static java.util.List<String> targetsOf(Map<String, String> env) throws IOException {
    Probe probe = new Probe();
    new CommandLine(probe).parseArgs();
    return probe.connection.targets(env).stream().map(ApiConnection.Target::endpoint).toList();
  }

  @Test
  void defaultsToALocalNodeInPlaintextWithoutAToken() throws IOException {
    ApiConnection.Target target = target(env());
    assertEquals("127.0.0.1:50051", target.endpoint());
    assertEquals(Optional.empty(), target.token());
    assertFalse(target.tls());
  }

  @Test
  void readsTheTokenALocalNodeWrote() throws IOException {
    Files.createDirectories(config.resolve("kaon"));
    Files.writeString(config.resolve("kaon/token"), "s3cret\n");
    assertEquals(config.resolve("kaon/token"), ConnectionOptions.defaultTokenFile(env()));
    assertEquals(Optional.of("s3cret"), target(env()).token());
  }

  @Test
  void optionsComeBeforeTheEnvironment(@TempDir Path dir) throws IOException {
    Path tokenFile = Files.writeString(dir.resolve("token"), "from-file");
    Map<String, String> env = env("KAON_ENDPOINT", "kaon.example:7000", "KAON_TOKEN", "from-env");
    ApiConnection.Target fromEnv = target(env);
    assertEquals("kaon.example:7000", fromEnv.endpoint());
    assertEquals(Optional.of("from-env"), fromEnv.token());

    ApiConnection.Target fromOptions = target(env, "--endpoint", "[::1]:50052", "--token-file", tokenFile.toString());
    assertEquals("::1", fromOptions.host());
    assertEquals(50052, fromOptions.port());
    assertEquals(Optional.of("from-file"), fromOptions.token());
  }

  @Test
  void tlsFromTheFlagTheEnvironmentOrACertificate() throws IOException {
    assertTrue(target(env(), "--tls").tls());
    assertTrue(target(env("KAON_TLS", "on")).tls());
    assertFalse(target(env("KAON_TLS", "off")).tls());
    ApiConnection.Target withCa = target(env("KAON_TLS_CA", "/etc/kaon/ca.pem"));
    assertTrue(withCa.tls());
    assertEquals(Optional.of(Path.of("/etc/kaon/ca.pem")), withCa.trustedCertificate());
  }

  @Test
  void aMalformedEndpointOptionIsAUsageError() {
    CommandLine.ParameterException e =
        assertThrows(CommandLine.ParameterException.class, () -> target(env(), "--endpoint", "localhost"));
    assertEquals("--endpoint: expected HOST:PORT, got \"localhost\"", e.getMessage());
  }

  @Test
  void unusableEnvironmentValuesNameTheVariable() {
    assertEquals("KAON_ENDPOINT: expected HOST:PORT, got \"kaon:http\"",
        assertThrows(IllegalArgumentException.class, () -> target(env("KAON_ENDPOINT", "kaon:http"))).getMessage());
    assertEquals("KAON_TLS: expected on or off, got \"maybe\"",
        assertThrows(IllegalArgumentException.class, () -> target(env("KAON_TLS", "maybe"))).getMessage());
  }

  @Test
  void aMissingOrEmptyTokenFileIsAnError(@TempDir Path dir) throws IOException {
    Path missing = dir.resolve("missing");
    assertEquals("token file " + missing + " does not exist",
        assertThrows(IOException.class, () -> target(env(), "--token-file", missing.toString())).getMessage());
    Path empty = Files.writeString(dir.resolve("empty"), "\n");
    assertEquals("the token file " + empty + " is empty",
        assertThrows(IOException.class, () -> target(env(), "--token-file", empty.toString())).getMessage());
  }
}
