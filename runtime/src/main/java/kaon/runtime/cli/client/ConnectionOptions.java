package kaon.runtime.cli.client;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The options every API command shares: where Kaon is, the token, TLS. Each falls back to an
 * environment variable and then to what a local {@code kaon node} uses, so on the node's own
 * machine no option is needed. Use it as a picocli {@code @Mixin} and run the command's work
 * through {@link #run}, which connects and turns failures into one line and an exit code.
 */
public final class ConnectionOptions {

  /** Where a local node serves its API. */
  public static final String DEFAULT_ENDPOINT = "127.0.0.1:50051";

  /** How the token file's place is written in messages. */
  static final String TOKEN_FILE_HINT = "${XDG_CONFIG_HOME:-~/.config}/kaon/token";

  @Spec(Spec.Target.MIXEE)
  CommandSpec mixee;

  @Option(names = "--endpoint", paramLabel = "HOST:PORT[,HOST:PORT...]",
      description = "Kaon's API; with several, the next one is tried when a node cannot be reached"
          + " (default: $KAON_ENDPOINT, else " + DEFAULT_ENDPOINT + ").")
  String endpoint;

  @Option(names = "--token-file", paramLabel = "FILE",
      description = "File holding the API token (default: $KAON_TOKEN, else " + TOKEN_FILE_HINT + " if it exists).")
  Path tokenFile;

  @Option(names = "--tls", description = "Connect with TLS (default: on when KAON_TLS=on or a CA is given).")
  boolean tls;

  @Option(names = "--tls-ca", paramLabel = "FILE",
      description = "PEM certificate of the CA to trust instead of the JVM's (default: $KAON_TLS_CA); implies --tls.")
  Path tlsCa;

  /** Does a command's work on an open connection; returns the exit code. */
  @FunctionalInterface
  public interface Call {
    /** The work; whatever it throws is reported by {@link ApiErrors}. */
    int run(ApiConnection api) throws Exception;
  }

  /**
   * Connects, runs {@code call} and closes the connection. A failure is printed as one line on the
   * command's error stream and answered with the exit code {@link ApiErrors} gives it; picocli's
   * usage errors pass through to picocli.
   */
  public int run(Call call) {
    PrintWriter err = mixee.commandLine().getErr();
    List<ApiConnection.Target> targets;
    try {
      targets = targets(System.getenv());
    } catch (IOException | IllegalArgumentException e) {
      return ApiErrors.report(new ApiErrors.Failure(e.getMessage(), ApiErrors.ENVIRONMENT), e, err);
    }
    for (int i = 0; ; i++) {
      ApiConnection.Target target = targets.get(i);
      try (ApiConnection api = ApiConnection.open(target)) {
        return call.run(api);
      } catch (ParameterException e) {
        throw e;
      } catch (Exception e) {
        if (e instanceof InterruptedException) {
          Thread.currentThread().interrupt();
        }
        ApiErrors.Failure failure = ApiErrors.describe(e, target);
        if (i + 1 < targets.size() && ApiErrors.tryAnother(e) && !Thread.currentThread().isInterrupted()) {
          // Any node serves the whole API: a node that is down must not make the CLI useless.
          err.println("kaon: " + failure.message() + "; trying " + targets.get(i + 1).endpoint());
          err.flush();
          continue;
        }
        return ApiErrors.report(failure, e, err);
      }
    }
  }

  /** The first of {@link #targets}. */
  ApiConnection.Target target(Map<String, String> env) throws IOException {
    return targets(env).get(0);
  }

  /**
   * Resolves where and how to connect from the options, then {@code env}, then the defaults: one
   * target per endpoint, in the order given.
   *
   * @throws ParameterException when {@code --endpoint} is not {@code HOST:PORT}
   * @throws IllegalArgumentException when an environment variable has an unusable value
   * @throws IOException when the token file cannot be read or is empty
   */
  List<ApiConnection.Target> targets(Map<String, String> env) throws IOException {
    List<HostPort> hostPorts = new ArrayList<>();
    if (endpoint != null) {
      try {
        hostPorts = HostPort.parseList(endpoint);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(mixee.commandLine(), "--endpoint: " + e.getMessage());
      }
    } else {
      try {
        hostPorts = HostPort.parseList(variable(env, "KAON_ENDPOINT").orElse(DEFAULT_ENDPOINT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("KAON_ENDPOINT: " + e.getMessage(), e);
      }
    }
    Optional<Path> ca = Optional.ofNullable(tlsCa).or(() -> variable(env, "KAON_TLS_CA").map(Path::of));
    boolean useTls = tls || ca.isPresent() || variable(env, "KAON_TLS").map(ConnectionOptions::onOff).orElse(false);
    Optional<String> token = token(env);
    List<ApiConnection.Target> targets = new ArrayList<>();
    for (HostPort hostPort : hostPorts) {
      targets.add(new ApiConnection.Target(hostPort.host(), hostPort.port(), token, useTls, ca));
    }
    return targets;
  }

  /**
   * The file a local node writes its API token to and clients read it from:
   * {@code $XDG_CONFIG_HOME/kaon/token}, or {@code ~/.config/kaon/token} without XDG_CONFIG_HOME.
   */
  public static Path defaultTokenFile(Map<String, String> env) {
    return variable(env, "XDG_CONFIG_HOME").map(Path::of)
        .orElseGet(() -> Path.of(System.getProperty("user.home"), ".config"))
        .resolve("kaon")
        .resolve("token");
  }

  private Optional<String> token(Map<String, String> env) throws IOException {
    if (tokenFile != null) {
      return Optional.of(readToken(tokenFile));
    }
    Optional<String> fromEnv = variable(env, "KAON_TOKEN").map(String::strip);
    if (fromEnv.isPresent()) {
      return fromEnv;
    }
    Path local = defaultTokenFile(env);
    return Files.exists(local) ? Optional.of(readToken(local)) : Optional.empty();
  }

  private static String readToken(Path file) throws IOException {
    String token;
    try {
      token = Files.readString(file, StandardCharsets.UTF_8).strip();
    } catch (NoSuchFileException e) {
      throw new IOException("token file " + file + " does not exist", e);
    } catch (IOException e) {
      throw new IOException("cannot read the token file " + file + ": " + e.getMessage(), e);
    }
    if (token.isEmpty()) {
      throw new IOException("the token file " + file + " is empty");
    }
    return token;
  }

  /** An environment variable; set-but-empty counts as unset, as shells make that easy to do. */
  private static Optional<String> variable(Map<String, String> env, String name) {
    return Optional.ofNullable(env.get(name)).filter(value -> !value.isBlank());
  }

  private static boolean onOff(String value) {
    return switch (value.strip().toLowerCase(Locale.ROOT)) {
      case "on", "true", "yes", "1" -> true;
      case "off", "false", "no", "0" -> false;
      default -> throw new IllegalArgumentException("KAON_TLS: expected on or off, got \"" + value + "\"");
    };
  }

  /** {@code host:port}, the host possibly an IPv6 address in brackets. */
  private record HostPort(String host, int port) {

    static HostPort parse(String text) {
      int colon = text.lastIndexOf(':');
      String host = colon < 0 ? "" : text.substring(0, colon).strip();
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      int port;
      try {
        port = Integer.parseInt(text.substring(colon + 1).strip());
      } catch (NumberFormatException e) {
        port = -1;
      }
      if (host.isEmpty() || port < 1 || port > 65_535) {
        throw new IllegalArgumentException("expected HOST:PORT, got \"" + text + "\"");
      }
      return new HostPort(host, port);
    }

    /** One or more, separated by commas. */
    static List<HostPort> parseList(String text) {
      List<HostPort> list = new ArrayList<>();
      for (String one : text.split(",")) {
        list.add(parse(one));
      }
      return list;
    }
  }
}
