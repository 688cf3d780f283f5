package kaon.actors.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxReaderTest {

  private static final byte[] PIXELS = new byte[5 * 3 * 2];
  private static final byte[] LABELS = {0, 9, 3, 3, 7};

  static {
    for (int i = 0; i < PIXELS.length; i++) {
      // Spans 0..255 so that the unsigned conversion (not sign extension) is exercised.
      PIXELS[i] = (byte) (i * 255 / (PIXELS.length - 1));
    }
  }

  @TempDir Path dir;

  @Test
  void readsPixelsScaledToUnitRangeAndLabels() throws IOException {
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, PIXELS)));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    LabeledImages read = IdxReader.read(images, labels, InflatedCache.NONE);

    assertEquals(5, read.count());
    assertEquals(3, read.rows());
    assertEquals(2, read.cols());
    assertEquals(6, read.featureSize());
    assertArrayEquals(new int[] {0, 9, 3, 3, 7}, read.labels());
    for (int i = 0; i < PIXELS.length; i++) {
      assertEquals((PIXELS[i] & 0xFF) / 255f, read.pixel(i), "pixel " + i);
    }
    assertEquals(0f, read.pixel(0));
    assertEquals(1f, read.pixel(PIXELS.length - 1));
  }

  @Test
  void reportsPixelsEndingEarlyAsTruncated() throws IOException {
    // The header promises five images but the file holds three.
    byte[] shortPixels = Arrays.copyOf(PIXELS, 3 * 3 * 2);
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, shortPixels)));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("truncated: expected 30 bytes of pixels"), message);
  }

  @Test
  void reportsCutCompressedStreamAsTruncated() throws IOException {
    // Random pixels do not compress, so cutting the file in half cuts into the pixel data.
    byte[] noise = new byte[100 * 10 * 10];
    new Random(1).nextBytes(noise);
    byte[] whole = gzip(imageFile(IdxReader.IMAGES_MAGIC, 100, 10, 10, noise));
    Path images = write("images.gz", Arrays.copyOf(whole, whole.length / 2));
    Path labels = write("labels.gz", gzip(labelFile(100, new byte[100])));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("truncated"), message);
  }

  @Test
  void reportsMissingGzipTrailerAsTruncated() throws IOException {
    byte[] whole = gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, PIXELS));
    Path images = write("images.gz", Arrays.copyOf(whole, whole.length - 4));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("truncated"), message);
  }

  @Test
  void namesFoundAndExpectedMagicWhenImagesFileHoldsLabels() throws IOException {
    Path images = write("images.gz", gzip(labelFile(5, LABELS)));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("0x00000803"), message);
    assertTrue(message.contains("0x00000801"), message);
  }

  @Test
  void rejectsFileThatIsNotGzip() throws IOException {
    Path images = write("images.gz", imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, PIXELS));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("not gzip-compressed"), message);
  }

  @Test
  void rejectsEmptyFileAsNotGzip() throws IOException {
    Path images = write("images.gz", new byte[0]);
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("not gzip-compressed"), message);
  }

  @Test
  void tellsHowToInstallWhenFileIsMissing() throws IOException {
    Path images = dir.resolve("train-images-idx3-ubyte.gz");
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("is missing"), message);
    assertTrue(message.contains("apt-get install dataset-fashion-mnist"), message);
    // The settings it names exist (reference.conf's kaon.worker.data-dir, its environment variable).
    assertTrue(message.contains("kaon.worker.data-dir / KAON_DATA_DIR / --data-dir"), message);
  }

  @Test
  void rejectsDifferentImageAndLabelCounts() throws IOException {
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, PIXELS)));
    Path labels = write("labels.gz", gzip(labelFile(4, Arrays.copyOf(LABELS, 4))));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains(labels.toString()), message);
    assertTrue(message.contains("5 images"), message);
    assertTrue(message.contains("4 labels"), message);
  }

  @Test
  void rejectsLabelOutsideTenClasses() throws IOException {
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, PIXELS)));
    Path labels = write("labels.gz", gzip(labelFile(5, new byte[] {0, 1, 10, 2, 3})));

    String message = failure(images, labels);

    assertTrue(message.contains(labels.toString()), message);
    assertTrue(message.contains("label 10 at index 2"), message);
  }

  @Test
  void rejectsDimensionsWhosePixelCountOverflows() throws IOException {
    // Only the header: the reader must refuse before trying to allocate the pixels.
    byte[] header = imageFile(IdxReader.IMAGES_MAGIC, 5, 100_000, 100_000, new byte[0]);
    Path images = write("images.gz", gzip(header));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("absurd dimensions 5 x 100000 x 100000"), message);
  }

  @Test
  void rejectsDimensionsThatWouldOverflowEvenALong() throws IOException {
    int max = Integer.MAX_VALUE;
    byte[] header = imageFile(IdxReader.IMAGES_MAGIC, max, max, max, new byte[0]);
    Path images = write("images.gz", gzip(header));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains("absurd dimensions"), message);
  }

  @Test
  void rejectsZeroRows() throws IOException {
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 0, 2, new byte[0])));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains("absurd dimensions 5 x 0 x 2"), message);
  }

  @Test
  void rejectsMoreDataThanHeaderDeclares() throws IOException {
    byte[] extra = Arrays.copyOf(PIXELS, PIXELS.length + 6);
    Path images = write("images.gz", gzip(imageFile(IdxReader.IMAGES_MAGIC, 5, 3, 2, extra)));
    Path labels = write("labels.gz", gzip(labelFile(5, LABELS)));

    String message = failure(images, labels);

    assertTrue(message.contains(images.toString()), message);
    assertTrue(message.contains("more data than its header declares"), message);
  }

  @Test
  void loadsRealFashionMnist() {
    Path installed = FashionMnist.DEFAULT_DIR;
    Assumptions.assumeTrue(
        Files.isDirectory(installed), installed + " is missing; install dataset-fashion-mnist");

    FashionMnist data = FashionMnist.load(installed);

    assertShape(data.train(), 60_000);
    assertShape(data.test(), 10_000);
    int[] perClass = new int[10];
    for (int label : data.train().labels()) {
      perClass[label]++;
    }
    int[] sixThousandEach = new int[10];
    Arrays.fill(sixThousandEach, 6_000);
    assertArrayEquals(sixThousandEach, perClass);
    double sum = 0;
    long pixels = (long) data.train().count() * data.train().featureSize();
    for (int i = 0; i < pixels; i++) {
      sum += data.train().pixel(i);
    }
    // The published mean intensity of the Fashion-MNIST training set.
    assertEquals(0.2860, sum / pixels, 0.001);
  }

  private static void assertShape(LabeledImages images, int count) {
    assertEquals(count, images.count());
    assertEquals(28, images.rows());
    assertEquals(28, images.cols());
    assertEquals(28 * 28, images.featureSize());
  }

  private static String failure(Path images, Path labels) {
    return assertThrows(DatasetUnavailableException.class, () -> IdxReader.read(images, labels, InflatedCache.NONE))
        .getMessage();
  }

  private Path write(String name, byte[] content) throws IOException {
    return Files.write(dir.resolve(name), content);
  }

  static byte[] imageFile(int magic, int count, int rows, int cols, byte[] pixels)
      throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.writeInt(magic);
    out.writeInt(count);
    out.writeInt(rows);
    out.writeInt(cols);
    out.write(pixels);
    return bytes.toByteArray();
  }

  static byte[] labelFile(int count, byte[] labels) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.writeInt(IdxReader.LABELS_MAGIC);
    out.writeInt(count);
    out.write(labels);
    return bytes.toByteArray();
  }

  static byte[] gzip(byte[] content) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (GZIPOutputStream out = new GZIPOutputStream(bytes)) {
      out.write(content);
    }
    return bytes.toByteArray();
  }
}
