package kaon.actors.data;

import java.nio.BufferOverflowException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Objects;

/**
 * A set of equally sized grey-scale images with one class label each, held in flat arrays.
 *
 * <p>Flat arrays rather than one object per sample: 60,000 Fashion-MNIST images are 47 million
 * pixels, and a worker copies its slice of a batch straight into one native tensor buffer.
 *
 * <p>Pixels are held either as floats, or as the stored unsigned bytes whose value is the byte
 * divided by 255 ({@link #ofIntensities}). The bytes take a quarter of the memory, and a node
 * holds its tasks' data sets for as long as it lives: Fashion-MNIST as floats was 220 MB of a
 * one-worker node's heap, more than Kaon's own working set. A byte becomes the very float that
 * dividing it by 255 gives, so either form trains bit-identically.
 *
 * <p>The arrays are shared, not copied; treat them as read-only.
 */
public final class LabeledImages {

  /** Each byte's value as a float, {@code b / 255f}: a lookup instead of a division per pixel. */
  private static final float[] INTENSITY = new float[256];

  static {
    for (int b = 0; b < INTENSITY.length; b++) {
      INTENSITY[b] = b / 255f;
    }
  }

  private final float[] floats;
  private final byte[] bytes;
  private final int[] labels;
  private final int count;
  private final int rows;
  private final int cols;

  /**
   * Images whose pixels are given as floats.
   *
   * @param pixels row-major, sample {@code i} at offset {@code i * rows * cols}
   * @param labels the class of each sample
   * @param count number of samples
   * @param rows height of each image in pixels
   * @param cols width of each image in pixels
   * @throws IllegalArgumentException if the arrays' lengths disagree with the declared shape
   */
  public LabeledImages(float[] pixels, int[] labels, int count, int rows, int cols) {
    this(pixels, null, labels, count, rows, cols, pixels == null ? -1 : pixels.length);
  }

  private LabeledImages(float[] floats, byte[] bytes, int[] labels, int count, int rows, int cols, long pixels) {
    if ((floats == null && bytes == null) || labels == null) {
      throw new IllegalArgumentException("pixels and labels must not be null");
    }
    if (count < 0) {
      throw new IllegalArgumentException("count (" + count + ") must not be negative");
    }
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException(
          "rows (" + rows + ") and cols (" + cols + ") must be positive");
    }
    if ((long) rows * cols > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "rows * cols (" + rows + " * " + cols + ") must fit in an int");
    }
    long expectedPixels = (long) count * rows * cols;
    if (pixels != expectedPixels) {
      throw new IllegalArgumentException(
          "pixels has " + pixels + " entries but count * rows * cols is " + expectedPixels);
    }
    if (labels.length != count) {
      throw new IllegalArgumentException(
          "labels has " + labels.length + " entries but count is " + count);
    }
    this.floats = floats;
    this.bytes = bytes;
    this.labels = labels;
    this.count = count;
    this.rows = rows;
    this.cols = cols;
  }

  /**
   * Images stored as unsigned bytes, pixel value {@code (b & 0xFF) / 255f} (intensities in [0,
   * 1], as MNIST-style files hold them).
   *
   * @param intensities row-major, sample {@code i} at offset {@code i * rows * cols}
   * @throws IllegalArgumentException if the arrays' lengths disagree with the declared shape
   */
  public static LabeledImages ofIntensities(byte[] intensities, int[] labels, int count, int rows, int cols) {
    return new LabeledImages(null, intensities, labels, count, rows, cols,
        intensities == null ? -1 : intensities.length);
  }

  /** The value of pixel {@code index} of the flat array (sample {@code index / featureSize()}). */
  public float pixel(int index) {
    return floats != null ? floats[index] : INTENSITY[bytes[index] & 0xFF];
  }

  /**
   * Appends sample {@code sample}'s {@link #featureSize()} pixels to {@code into} at its position.
   *
   * @throws IndexOutOfBoundsException if there is no such sample
   * @throws BufferOverflowException if {@code into} has less room than that
   */
  public void copySample(int sample, FloatBuffer into) {
    Objects.checkIndex(sample, count);
    int features = featureSize();
    int from = sample * features;
    if (floats != null) {
      into.put(floats, from, features);
      return;
    }
    if (into.remaining() < features) {
      throw new BufferOverflowException();
    }
    int at = into.position();
    for (int i = 0; i < features; i++) {
      into.put(at + i, INTENSITY[bytes[from + i] & 0xFF]);
    }
    into.position(at + features);
  }

  /** Whether the pixels are stored as unsigned bytes ({@link #ofIntensities}) rather than floats. */
  public boolean storedAsIntensities() {
    return bytes != null;
  }

  /**
   * Appends sample {@code sample}'s stored bytes to {@code into} at its position: a quarter of
   * the floats' traffic, for a caller that turns them into floats itself (in native code).
   *
   * @throws IllegalStateException if the pixels are floats ({@link #storedAsIntensities()} false)
   * @throws IndexOutOfBoundsException if there is no such sample
   * @throws BufferOverflowException if {@code into} has less room than that
   */
  public void copyIntensities(int sample, ByteBuffer into) {
    if (bytes == null) {
      throw new IllegalStateException("these images are stored as floats, not intensities");
    }
    Objects.checkIndex(sample, count);
    into.put(bytes, sample * featureSize(), featureSize());
  }

  /** The class of each sample; shared, so read-only. */
  public int[] labels() {
    return labels;
  }

  /** Number of samples. */
  public int count() {
    return count;
  }

  /** Height of each image in pixels. */
  public int rows() {
    return rows;
  }

  /** Width of each image in pixels. */
  public int cols() {
    return cols;
  }

  /**
   * Returns the number of pixels in one image, which is the length of one sample's feature vector.
   *
   * @return {@code rows * cols}
   */
  public int featureSize() {
    return rows * cols;
  }

  @Override
  public String toString() {
    return "LabeledImages[" + count + " x " + rows + " x " + cols + (bytes != null ? ", bytes]" : ", floats]");
  }
}
