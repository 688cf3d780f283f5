package kaon.actors.data;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.zip.CRC32;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inflated content of gzip files, kept once per user so that later reads skip inflating.
 *
 * <p>Inflating Fashion-MNIST (26 MB of gzip, 55 MB inflated) is about 0.25 s of CPU. A node
 * that joins a training cluster loads its task's data while its JVM starts on the same core, and
 * there that took 0.9-2.8 s of the join (bench/recovery, join). Reading the inflated copy and
 * checking it is about a fifth of that work.
 *
 * <p>An entry is named after its gzip file and the CRC-32 and length that the file's own trailer
 * gives for its inflated content, and it is used only when its bytes have that length and CRC:
 * the same check inflating the file makes. A changed file names another entry (the stale one is
 * deleted when the new one is written); a damaged entry is passed over and written again. An
 * entry is written only from content that matched the trailer too, through a temporary file and
 * a rename, so a crash mid-write leaves no entry. Every failure to read or write one falls back
 * to the gzip file: this is a cache, never the data's source.
 *
 * <p>A gzip file of several members (concatenated) has the trailer of its last member only; its
 * whole content then never matches that trailer, and it is simply never cached.
 */
final class InflatedCache {

  private static final Logger log = LoggerFactory.getLogger(InflatedCache.class);
  /** A gzip header (10 bytes) and trailer (8): anything shorter is no gzip file. */
  private static final int MIN_GZIP_BYTES = 18;

  /** The user's: {@code $XDG_CACHE_HOME/kaon/inflated}, else {@code ~/.cache/kaon/inflated}. */
  static final InflatedCache USER = new InflatedCache(UserCache.kaonDir().resolve("inflated"));

  /** One that keeps nothing. */
  static final InflatedCache NONE = new InflatedCache(null);

  private final Path dir;

  /** A cache in {@code dir}; null: none. */
  InflatedCache(Path dir) {
    this.dir = dir;
  }

  /** What a gzip file's trailer says of its content: CRC-32, and length modulo 2^32. */
  private record Trailer(long crc, long size) {}

  private static Trailer trailer(Path gzip) throws IOException {
    try (FileChannel channel = FileChannel.open(gzip)) {
      long length = channel.size();
      if (length < MIN_GZIP_BYTES) {
        return null;
      }
      ByteBuffer tail = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      while (tail.hasRemaining() && channel.read(tail, length - 8 + tail.position()) > 0) {
        // a positional read may return fewer bytes than asked
      }
      tail.flip();
      return tail.remaining() < 8 ? null
          : new Trailer(Integer.toUnsignedLong(tail.getInt()), Integer.toUnsignedLong(tail.getInt()));
    }
  }

  private static String baseName(Path gzip) {
    String name = gzip.getFileName().toString();
    return name.endsWith(".gz") ? name.substring(0, name.length() - 3) : name;
  }

  private Path entry(Path gzip, Trailer trailer) {
    return dir.resolve(baseName(gzip) + "." + Long.toHexString(trailer.crc()) + "." + trailer.size());
  }

  /** The inflated content of {@code gzip} if an intact entry holds it, else null. */
  byte[] get(Path gzip) {
    if (dir == null) {
      return null;
    }
    try {
      Trailer trailer = trailer(gzip);
      if (trailer == null) {
        return null;
      }
      Path entry = entry(gzip, trailer);
      if (!Files.isRegularFile(entry) || Files.size(entry) != trailer.size()) {
        return null;
      }
      byte[] content = Files.readAllBytes(entry);
      CRC32 crc = new CRC32();
      crc.update(content);
      return content.length == trailer.size() && crc.getValue() == trailer.crc() ? content : null;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /**
   * Keeps {@code parts}, in order, as the inflated content of {@code gzip}, if they are what its
   * trailer says it holds. Best effort: a failure is logged and changes nothing else.
   */
  void put(Path gzip, byte[]... parts) {
    if (dir == null) {
      return;
    }
    try {
      Trailer trailer = trailer(gzip);
      CRC32 crc = new CRC32();
      long size = 0;
      for (byte[] part : parts) {
        crc.update(part);
        size += part.length;
      }
      if (trailer == null || size != trailer.size() || crc.getValue() != trailer.crc()) {
        return;
      }
      Files.createDirectories(dir);
      Path entry = entry(gzip, trailer);
      Path partial = Files.createTempFile(dir, entry.getFileName().toString(), ".partial");
      try {
        try (OutputStream out = Files.newOutputStream(partial)) {
          for (byte[] part : parts) {
            out.write(part);
          }
        }
        Files.move(partial, entry, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(partial);
      }
      // Entries of this file's earlier content.
      try (DirectoryStream<Path> same = Files.newDirectoryStream(dir, baseName(gzip) + ".*")) {
        for (Path other : same) {
          if (!other.equals(entry) && !other.toString().endsWith(".partial")) {
            Files.deleteIfExists(other);
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      log.info("the inflated content of {} is not cached in {} ({}); it is inflated again next time", gzip, dir,
          e.toString());
    }
  }
}
