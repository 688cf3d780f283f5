package kaon.actors.data;

/**
 * A data set cannot be used: a file is missing, unreadable or malformed.
 *
 * <p>The message is one sentence that names the file and says what to do, so the command line can
 * print it as is. It carries no cause on purpose: the low-level exception (an {@code EOFException}
 * or {@code ZipException} deep inside the gzip stream) adds nothing a user can act on, and its
 * message is already folded into ours where it helps.
 */
public final class DatasetUnavailableException extends RuntimeException {

  /**
   * Creates the exception.
   *
   * @param message one sentence naming the file and the problem
   */
  public DatasetUnavailableException(String message) {
    super(message);
  }
}
