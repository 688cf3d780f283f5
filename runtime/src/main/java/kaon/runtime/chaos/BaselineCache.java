package kaon.runtime.chaos;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Properties;
import kaon.actors.data.UserCache;
import kaon.protocol.v1.JobSpecification;

/**
 * Fault-free results of jobs, so that a chaos run holds its job to one without training it again
 * each time. The key is the job's spec and the build's commit: the same spec on other code may
 * train to other parameters. A build without a commit ("unknown") is never cached.
 */
public final class BaselineCache {

  /** A fault-free run's result: the accuracy and model digest a chaos run's job is compared with. */
  public record Entry(String jobId, double testAccuracy, String digest, int worldSize, String commit) {}

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final String commit;

  public BaselineCache(Path dir, String commit) {
    this.dir = dir;
    this.commit = commit;
  }

  /** The user's cache ({@code $XDG_CACHE_HOME/kaon/chaos-baselines}) for this build. */
  public static BaselineCache forThisBuild() {
    return new BaselineCache(UserCache.kaonDir().resolve("chaos-baselines"), buildCommit());
  }

  public Optional<Entry> find(JobSpecification spec) {
    if (commit.equals("unknown")) {
      return Optional.empty();
    }
    Path file = dir.resolve(key(spec) + ".json");
    try {
      return Files.exists(file) ? Optional.of(JSON.readValue(file.toFile(), Entry.class)) : Optional.empty();
    } catch (IOException e) {
      return Optional.empty(); // a damaged entry is trained again and overwritten
    }
  }

  public void store(JobSpecification spec, Entry entry) throws IOException {
    if (commit.equals("unknown")) {
      return;
    }
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "baseline", ".tmp");
    JSON.writeValue(tmp.toFile(), entry);
    Files.move(tmp, dir.resolve(key(spec) + ".json"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  public String commit() {
    return commit;
  }

  private String key(JobSpecification spec) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(commit.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      // Protobuf writes a message's fields in field-number order: the same spec, the same bytes.
      sha.update(spec.toByteArray());
      return HexFormat.of().formatHex(sha.digest()).substring(0, 32);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

  /** The commit the running build was made from (written into the jar at build time). */
  static String buildCommit() {
    Properties build = new Properties();
    try (InputStream in = BaselineCache.class.getResourceAsStream("/kaon/runtime/cli/build.properties")) {
      if (in != null) {
        build.load(in);
      }
    } catch (IOException e) {
      return "unknown";
    }
    return build.getProperty("commit", "unknown");
  }
}
