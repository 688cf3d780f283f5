package kaon.actors.data;

import java.nio.file.Path;

/** Where Kaon keeps what it can make again, per user. */
public final class UserCache {

  private UserCache() {}

  /** The user's cache directory for Kaon: {@code $XDG_CACHE_HOME/kaon}, else {@code ~/.cache/kaon}. */
  public static Path kaonDir() {
    String cache = System.getenv("XDG_CACHE_HOME");
    Path root = cache != null && !cache.isBlank() ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache");
    return root.resolve("kaon");
  }
}
