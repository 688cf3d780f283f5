package kaon.actors.data;

/**
 * A set of equally sized grey-scale images with one class label each, held in flat arrays.
 *
 * <p>Flat arrays rather than one object per sample: 60,000 Fashion-MNIST images are 47 million
 * floats, and a worker copies its slice of a batch straight into one native tensor buffer.
 *
 * <p>The arrays are shared, not copied (copying the training set would double its 190 MB); treat
 * them as read-only. As for any record holding arrays, {@code equals} compares array identity.
 *
 * @param pixels intensities in [0, 1] (the stored uint8 divided by 255), row-major, sample
 *     {@code i} at offset {@code i * rows * cols}
 * @param labels the class of each sample
 * @param count number of samples
 * @param rows height of each image in pixels
 * @param cols width of each image in pixels
 */
public record LabeledImages(float[] pixels, int[] labels, int count, int rows, int cols) {

  /** Rejects arrays whose lengths disagree with the declared shape. */
  public LabeledImages {
    if (pixels == null || labels == null) {
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
    if (pixels.length != expectedPixels) {
      throw new IllegalArgumentException(
          "pixels has " + pixels.length + " entries but count * rows * cols is " + expectedPixels);
    }
    if (labels.length != count) {
      throw new IllegalArgumentException(
          "labels has " + labels.length + " entries but count is " + count);
    }
  }

  /**
   * Returns the number of pixels in one image, which is the length of one sample's feature vector.
   *
   * @return {@code rows * cols}
   */
  public int featureSize() {
    return rows * cols;
  }
}
