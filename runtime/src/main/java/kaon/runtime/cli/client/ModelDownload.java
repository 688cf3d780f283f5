package kaon.runtime.cli.client;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.ExecutionException;
import java.util.function.Consumer;
import kaon.protocol.v1.ModelChunk;

/**
 * Saves a job's trained model from the API to a file. The chunks stream into a temporary file
 * next to it while their sha256 is computed; only a file whose length and sha256 are those the
 * server announced is renamed into place. So the file is either the whole, verified model or
 * left as it was, and nothing half written stays behind.
 */
public final class ModelDownload {

  /**
   * A model saved.
   *
   * @param file where it is
   * @param bytes its length
   * @param sha256 its SHA-256 (hex), the job's digest
   */
  public record Saved(Path file, long bytes, String sha256) {}

  /** The bytes received are not the file the server announced; nothing was saved. */
  public static final class DamagedModelException extends IOException {
    DamagedModelException(String message) {
      super(message);
    }
  }

  private ModelDownload() {}

  /**
   * Downloads the model of {@code jobId} to {@code file}, replacing it if it exists.
   *
   * @throws DamagedModelException when what arrived fails the length or sha256 check
   * @throws IOException when the file cannot be written
   * @throws ExecutionException when the call failed; its cause is the server's status
   */
  public static Saved save(ApiConnection api, String jobId, Path file)
      throws IOException, ExecutionException, InterruptedException {
    Path target = file.toAbsolutePath();
    Path tmp;
    try {
      tmp = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".part");
    } catch (IOException e) {
      throw new IOException("cannot save the model to " + file + ": " + describe(e), e);
    }
    try {
      Saved saved = receive(api, jobId, tmp, file);
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      return saved;
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Streams the model into {@code tmp} and checks it against what the server announced. */
  private static Saved receive(ApiConnection api, String jobId, Path tmp, Path file)
      throws IOException, ExecutionException, InterruptedException {
    Receiver receiver;
    try (OutputStream out = Files.newOutputStream(tmp)) {
      receiver = new Receiver(out);
      api.downloadModel(jobId, receiver);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof UncheckedIOException io) {
        throw new IOException("cannot save the model to " + file + ": " + describe(io.getCause()), io.getCause());
      }
      throw e;
    }
    String actual = HexFormat.of().formatHex(receiver.sha.digest());
    if (receiver.sha256.isEmpty()) {
      throw new DamagedModelException("the server sent no sha256 for the model of job " + jobId + "; nothing was saved to "
          + file);
    }
    if (receiver.received != receiver.totalBytes) {
      throw new DamagedModelException("the model of job " + jobId + " arrived incomplete (" + receiver.received + " of "
          + receiver.totalBytes + " bytes); nothing was saved to " + file);
    }
    if (!actual.equals(receiver.sha256)) {
      throw new DamagedModelException("the model of job " + jobId + " failed its sha256 check (received " + actual
          + ", the server announced " + receiver.sha256 + "); nothing was saved to " + file);
    }
    return new Saved(file, receiver.received, actual);
  }

  /** Writes the chunks as they come, hashing them on the way, and keeps what the first announced. */
  private static final class Receiver implements Consumer<ModelChunk> {
    private final MessageDigest sha = sha256();
    private final OutputStream out;
    private boolean first = true;
    private String sha256 = "";
    private long totalBytes;
    private long received;

    Receiver(OutputStream file) {
      this.out = new DigestOutputStream(file, sha);
    }

    @Override
    public void accept(ModelChunk chunk) {
      if (first) {
        first = false;
        sha256 = chunk.getSha256();
        totalBytes = chunk.getTotalBytes();
      }
      try {
        chunk.getData().writeTo(out);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      received += chunk.getData().size();
    }
  }

  private static String describe(Throwable e) {
    if (e instanceof java.nio.file.NoSuchFileException) {
      return "no such directory";
    }
    if (e instanceof java.nio.file.AccessDeniedException) {
      return "permission denied";
    }
    return e.getMessage() == null ? e.toString() : e.getMessage();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every JVM", e);
    }
  }
}
