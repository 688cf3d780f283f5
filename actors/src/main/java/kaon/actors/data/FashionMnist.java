package kaon.actors.data;

import java.nio.file.Path;

/**
 * The Fashion-MNIST data set: 60,000 training and 10,000 test images of 28 x 28 pixels in ten
 * clothing classes, read from the four files under their published names.
 *
 * @param train the 60,000 training samples
 * @param test the 10,000 test samples
 */
public record FashionMnist(LabeledImages train, LabeledImages test) {

  /** Where the Debian package {@code dataset-fashion-mnist} installs the files. */
  public static final Path DEFAULT_DIR = Path.of("/usr/share/datasets/fashion-mnist");

  static final String TRAIN_IMAGES = "train-images-idx3-ubyte.gz";
  static final String TRAIN_LABELS = "train-labels-idx1-ubyte.gz";
  static final String TEST_IMAGES = "t10k-images-idx3-ubyte.gz";
  static final String TEST_LABELS = "t10k-labels-idx1-ubyte.gz";

  /** Rejects a missing half, which would otherwise fail later and far from its cause. */
  public FashionMnist {
    if (train == null || test == null) {
      throw new IllegalArgumentException("train and test must not be null");
    }
  }

  /**
   * Loads both splits from a directory holding the four standard files.
   *
   * @param dir the directory, usually {@link #DEFAULT_DIR}
   * @return the training and test splits
   * @throws DatasetUnavailableException if a file is missing or malformed; the message names it
   */
  public static FashionMnist load(Path dir) {
    return new FashionMnist(
        IdxReader.read(dir.resolve(TRAIN_IMAGES), dir.resolve(TRAIN_LABELS)),
        IdxReader.read(dir.resolve(TEST_IMAGES), dir.resolve(TEST_LABELS)));
  }
}
