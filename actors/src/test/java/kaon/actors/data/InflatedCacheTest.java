package kaon.actors.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InflatedCacheTest {

  @TempDir Path dir;

  /** The cache under test, in the test's own directory. */
  private InflatedCache cache;

  @BeforeEach
  void newCache() {
    cache = new InflatedCache(cacheDir());
  }

  private Path cacheDir() {
    return dir.resolve("cache");
  }

  @Test
  void aSecondReadComesFromTheCacheWithTheSameContent() throws IOException {
    byte[] pixels = randomPixels(1);
    Path images = images(pixels);
    Path labels = labels();
    LabeledImages first = IdxReader.read(images, labels, cache);
    assertEquals(2, entries().size(), "one entry per file");

    // The gzip files' middles are destroyed, their trailers kept: only the cache can still
    // give their content.
    spoilMiddle(images);
    spoilMiddle(labels);
    assertThrows(DatasetUnavailableException.class, () -> IdxReader.read(images, labels, InflatedCache.NONE));
    LabeledImages second = IdxReader.read(images, labels, cache);

    assertArrayEquals(first.labels(), second.labels());
    for (int i = 0; i < pixels.length; i++) {
      assertEquals(first.pixel(i), second.pixel(i), "pixel " + i);
    }
  }

  @Test
  void aDamagedEntryIsPassedOverAndWrittenAgain() throws IOException {
    byte[] pixels = randomPixels(2);
    Path images = images(pixels);
    Path labels = labels();
    IdxReader.read(images, labels, cache);
    Path entry = entries().stream().filter(p -> p.getFileName().toString().startsWith("images.")).findFirst().orElseThrow();
    byte[] content = Files.readAllBytes(entry);
    content[content.length - 1] ^= 0x40;
    Files.write(entry, content);

    assertNull(cache.get(images), "an entry whose CRC differs from the trailer's");
    LabeledImages read = IdxReader.read(images, labels, cache);
    assertEquals((pixels[pixels.length - 1] & 0xFF) / 255f, read.pixel(pixels.length - 1));
    assertArrayEquals(Files.readAllBytes(entry), imageFile(pixels), "the entry was written again");
  }

  @Test
  void aChangedFileReplacesItsEntry() throws IOException {
    Path labels = labels();
    Path images = images(randomPixels(3));
    IdxReader.read(images, labels, cache);
    byte[] changed = randomPixels(4);
    images(changed);

    LabeledImages read = IdxReader.read(images, labels, cache);

    for (int i = 0; i < changed.length; i++) {
      assertEquals((changed[i] & 0xFF) / 255f, read.pixel(i), "pixel " + i);
    }
    assertEquals(2, entries().size(), "the old content's entry is gone");
    assertArrayEquals(imageFile(changed), cache.get(images));
  }

  @Test
  void contentThatIsNotTheFilesIsNeverKept() throws IOException {
    Path images = images(randomPixels(5));

    cache.put(images, imageFile(randomPixels(6)));

    assertEquals(List.of(), entries());
    assertNull(cache.get(images));
  }

  @Test
  void aCacheThatCannotBeWrittenOnlyCostsTheInflating() throws IOException {
    Path blocked = write("not-a-directory", new byte[] {1});
    InflatedCache unwritable = new InflatedCache(blocked.resolve("cache"));
    byte[] pixels = randomPixels(7);
    Path images = images(pixels);
    Path labels = labels();

    LabeledImages read = IdxReader.read(images, labels, unwritable);

    assertEquals((pixels[0] & 0xFF) / 255f, read.pixel(0));
  }

  private List<Path> entries() throws IOException {
    if (!Files.isDirectory(cacheDir())) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(cacheDir())) {
      return files.toList();
    }
  }

  /** Overwrites the compressed data between the gzip header and trailer. */
  private static void spoilMiddle(Path gzip) throws IOException {
    byte[] bytes = Files.readAllBytes(gzip);
    for (int i = 10; i < bytes.length - 8; i++) {
      bytes[i] = (byte) 0xFF;
    }
    Files.write(gzip, bytes);
  }

  private static byte[] randomPixels(long seed) {
    byte[] pixels = new byte[4 * 3 * 3];
    new Random(seed).nextBytes(pixels);
    return pixels;
  }

  private Path images(byte[] pixels) throws IOException {
    return write("images.gz", gzip(imageFile(pixels)));
  }

  private Path labels() throws IOException {
    return write("labels.gz", gzip(labelFile()));
  }

  private Path write(String name, byte[] content) throws IOException {
    return Files.write(dir.resolve(name), content);
  }

  private static byte[] imageFile(byte[] pixels) throws IOException {
    return IdxReaderTest.imageFile(IdxReader.IMAGES_MAGIC, 4, 3, 3, pixels);
  }

  private static byte[] labelFile() throws IOException {
    return IdxReaderTest.labelFile(4, new byte[] {1, 2, 3, 9});
  }

  private static byte[] gzip(byte[] content) throws IOException {
    return IdxReaderTest.gzip(content);
  }
}
