package kaon.actors.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reads a pair of gzip-compressed IDX files (one of images, one of labels) as published for
 * MNIST and Fashion-MNIST.
 *
 * <p>IDX is big-endian: an image file is magic {@code 0x00000803}, then count, rows and cols as
 * int32, then {@code count * rows * cols} unsigned bytes; a label file is magic {@code
 * 0x00000801}, then count, then {@code count} unsigned bytes in 0..9.
 *
 * <p>Every problem surfaces as a {@link DatasetUnavailableException} whose message names the file,
 * because a training job that dies on a bad data directory should tell the operator which file to
 * fix rather than print a stack trace from inside the inflater.
 */
public final class IdxReader {

  /** What to tell a user whose data set is missing; callers that resolve the directory reuse it. */
  public static final String INSTALL_HINT =
      "Install it with: sudo apt-get install dataset-fashion-mnist (or point"
          + " kaon.worker.data-dir / KAON_DATA_DIR / --data-dir at a directory"
          + " that holds it)";

  static final int IMAGES_MAGIC = 0x00000803;
  static final int LABELS_MAGIC = 0x00000801;

  /** Labels are class indices of a ten-class problem. */
  private static final int CLASSES = 10;

  /**
   * Large enough that the inflater works on whole blocks instead of being called per few bytes,
   * which is most of the difference between 0.2 s and 1 s for the training set.
   */
  private static final int BUFFER_BYTES = 1 << 16;

  private IdxReader() {}

  /**
   * Reads an image file and its label file.
   *
   * @param images gzip-compressed IDX image file ({@code *-images-idx3-ubyte.gz})
   * @param labels gzip-compressed IDX label file ({@code *-labels-idx1-ubyte.gz}) with one label
   *     per image
   * @return the images scaled to [0, 1] with their labels
   * @throws DatasetUnavailableException if either file is missing, unreadable, not gzip, has the
   *     wrong magic or absurd dimensions, is truncated or too long, holds a label outside 0..9, or
   *     if the two files disagree on the number of samples
   */
  public static LabeledImages read(Path images, Path labels) {
    return read(images, labels, InflatedCache.USER);
  }

  /** As {@link #read(Path, Path)}, keeping the files' inflated content in {@code cache}. */
  static LabeledImages read(Path images, Path labels, InflatedCache cache) {
    // Labels first: they are small, so a count mismatch is reported before inflating 47 MB.
    int[] labelValues = readLabels(labels, cache);
    try (IdxStream in = IdxStream.open(images, cache)) {
      in.expectMagic(IMAGES_MAGIC);
      int count = in.readHeaderInt();
      int rows = in.readHeaderInt();
      int cols = in.readHeaderInt();
      // Checked in this order so that no product can overflow a long before it is compared.
      if (count < 0 || rows <= 0 || cols <= 0
          || (long) rows * cols > Integer.MAX_VALUE
          || (long) count * rows * cols > Integer.MAX_VALUE) {
        throw in.problem(
            "declares absurd dimensions " + count + " x " + rows + " x " + cols
                + " (count must be >= 0, rows and cols > 0, and their product fit in an int)");
      }
      if (count != labelValues.length) {
        throw new DatasetUnavailableException(
            "Fashion-MNIST files " + images + " and " + labels + " disagree: the first holds "
                + count + " images but the second " + labelValues.length + " labels");
      }
      byte[] raw = in.readBody(count * rows * cols, "bytes of pixels");
      in.expectEnd();
      in.keep(header(IMAGES_MAGIC, count, rows, cols), raw);
      // Kept as the stored bytes: a quarter of the floats' memory, and the same values.
      return LabeledImages.ofIntensities(raw, labelValues, count, rows, cols);
    }
  }

  private static int[] readLabels(Path file, InflatedCache cache) {
    try (IdxStream in = IdxStream.open(file, cache)) {
      in.expectMagic(LABELS_MAGIC);
      int count = in.readHeaderInt();
      if (count < 0) {
        throw in.problem("declares a negative label count " + count);
      }
      byte[] raw = in.readBody(count, "labels");
      in.expectEnd();
      int[] labels = new int[count];
      for (int i = 0; i < count; i++) {
        int label = raw[i] & 0xFF;
        if (label >= CLASSES) {
          throw in.problem(
              "holds label " + label + " at index " + i + " but labels must be 0.."
                  + (CLASSES - 1));
        }
        labels[i] = label;
      }
      in.keep(header(LABELS_MAGIC, count), raw);
      return labels;
    }
  }

  /** An IDX header as stored: big-endian ints. */
  private static byte[] header(int... values) {
    java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(values.length * Integer.BYTES);
    for (int v : values) {
      bytes.putInt(v);
    }
    return bytes.array();
  }

  /**
   * One open IDX file that turns every I/O failure into a {@link DatasetUnavailableException}
   * naming the file, so the parsing code above reads as the format it parses.
   */
  private static final class IdxStream implements AutoCloseable {
    private final Path file;
    private final DataInputStream in;
    /** Where the inflated content goes once read and checked; null when it came from there. */
    private final InflatedCache cache;

    private IdxStream(Path file, DataInputStream in, InflatedCache cache) {
      this.file = file;
      this.in = in;
      this.cache = cache;
    }

    static IdxStream open(Path file, InflatedCache cache) {
      if (!Files.exists(file)) {
        throw missing(file);
      }
      byte[] inflated = cache.get(file);
      if (inflated != null) {
        return new IdxStream(file, new DataInputStream(new java.io.ByteArrayInputStream(inflated)), null);
      }
      InputStream raw = null;
      try {
        raw = Files.newInputStream(file);
        var gzip = new GZIPInputStream(raw, BUFFER_BYTES);
        return new IdxStream(
            file, new DataInputStream(new BufferedInputStream(gzip, BUFFER_BYTES)), cache);
      } catch (NoSuchFileException e) {
        throw missing(file);
      } catch (ZipException | EOFException e) {
        closeQuietly(raw);
        // GZIPInputStream reads the gzip header eagerly: a wrong header is a ZipException and a
        // file shorter than the header (an empty one, say) an EOFException.
        throw new DatasetUnavailableException(
            "Fashion-MNIST file " + file + " is not gzip-compressed (" + e.getMessage() + ")");
      } catch (IOException e) {
        closeQuietly(raw);
        throw new DatasetUnavailableException(
            "Fashion-MNIST file " + file + " cannot be read (" + e.getClass().getSimpleName()
                + ": " + e.getMessage() + ")");
      }
    }

    /** The file, read to its end and checked, was {@code parts}: kept for the next read. */
    void keep(byte[]... parts) {
      if (cache != null) {
        cache.put(file, parts);
      }
    }

    void expectMagic(int expected) {
      int found = readHeaderInt();
      if (found != expected) {
        throw problem(
            String.format(
                "has magic number 0x%08X but 0x%08X was expected (is it the right kind of IDX"
                    + " file?)",
                found, expected));
      }
    }

    int readHeaderInt() {
      try {
        return in.readInt();
      } catch (EOFException e) {
        throw problem("is truncated: its header ended early");
      } catch (IOException e) {
        throw unreadable(e);
      }
    }

    byte[] readBody(int length, String what) {
      byte[] body = new byte[length];
      try {
        in.readFully(body);
      } catch (EOFException e) {
        throw problem("is truncated: expected " + length + " " + what + ", file ended early");
      } catch (IOException e) {
        throw unreadable(e);
      }
      return body;
    }

    /**
     * Reads on to the end of the gzip stream. Stopping right after the body would accept a file
     * whose gzip trailer is cut off or whose checksum is wrong, and one holding more samples than
     * its header says: all signs of a damaged or mismatched file.
     */
    void expectEnd() {
      try {
        if (in.read() != -1) {
          throw problem("holds more data than its header declares");
        }
      } catch (EOFException e) {
        throw problem("is truncated: its gzip trailer is missing");
      } catch (IOException e) {
        throw unreadable(e);
      }
    }

    DatasetUnavailableException problem(String what) {
      return new DatasetUnavailableException("Fashion-MNIST file " + file + " " + what);
    }

    private DatasetUnavailableException unreadable(IOException e) {
      // ZipException here means corrupt deflate data or a checksum mismatch, not a missing header.
      String kind = e instanceof ZipException ? "is corrupt" : "cannot be read";
      return problem(kind + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")");
    }

    private static DatasetUnavailableException missing(Path file) {
      return new DatasetUnavailableException(
          "Fashion-MNIST file " + file + " is missing. " + INSTALL_HINT);
    }

    private static void closeQuietly(InputStream raw) {
      if (raw == null) {
        return;
      }
      try {
        raw.close();
      } catch (IOException ignored) {
        // Already failing with a clearer message; a close error would only hide it.
      }
    }

    @Override
    public void close() {
      try {
        in.close();
      } catch (IOException ignored) {
        // Everything needed has been read; a failed close of a read-only file loses nothing.
      }
    }
  }
}
