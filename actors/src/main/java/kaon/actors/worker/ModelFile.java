package kaon.actors.worker;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.UUID;

/**
 * The file rank 0 writes a job's trained parameters to on its node. A job's {@code model_output}
 * is a name relative to the node's model directory ({@code kaon.worker.model-dir}), never a path
 * of the caller's choosing: whoever may call the API must not be able to make a node write
 * wherever the node's user can.
 *
 * <p>The gateway refuses any other name ({@link #problem}) before it reaches a job, and the
 * worker checks again where the name lands before it writes ({@link #write}): a spec may come
 * from an older journal or from a gateway of another version, and a symbolic link inside the
 * directory could lead out of it.
 */
public final class ModelFile {

  /**
   * The longest name, in UTF-8 bytes. File systems limit each path segment to 255 bytes; a whole
   * name of at most that many keeps every segment within the limit.
   */
  public static final int MAX_BYTES = 255;

  private ModelFile() {}

  /**
   * What is wrong with {@code name} as a model output, or empty when it is a relative name that
   * stays inside the model directory: no leading {@code /}, no empty, {@code .} or {@code ..}
   * segments, no backslashes, no control characters, at most {@link #MAX_BYTES} bytes.
   */
  public static Optional<String> problem(String name) {
    if (name.isEmpty()) {
      return Optional.of("must not be empty");
    }
    int bytes = name.getBytes(StandardCharsets.UTF_8).length;
    if (bytes > MAX_BYTES) {
      return Optional.of("must be at most " + MAX_BYTES + " bytes long, was " + bytes);
    }
    if (name.startsWith("/")) {
      return Optional.of("must be a name relative to the node's model directory (kaon.worker.model-dir), not an absolute "
          + "path, was '" + name + "'");
    }
    if (name.indexOf('\\') >= 0) {
      return Optional.of("must not contain a backslash, was '" + name + "'");
    }
    for (int i = 0; i < name.length(); i++) {
      if (Character.isISOControl(name.charAt(i))) {
        return Optional.of(String.format("must not contain control characters (U+%04X at index %d)", (int) name.charAt(i), i));
      }
    }
    for (String segment : name.split("/", -1)) {
      if (segment.isEmpty()) {
        return Optional.of("must not contain empty segments ('//' or a trailing '/'), was '" + name + "'");
      }
      if (segment.equals(".") || segment.equals("..")) {
        return Optional.of("must not contain '.' or '..' segments, was '" + name + "'");
      }
    }
    return Optional.empty();
  }

  /**
   * Writes {@code bytes} to {@code name} under {@code dir}, creating the directories on the way,
   * and renames the file into place so that a reader never sees half of it.
   *
   * @return the file written
   * @throws IOException when the name is refused by {@link #problem}, leads out of {@code dir}
   *     (through a symbolic link too), or the file cannot be written
   */
  public static Path write(Path dir, String name, byte[] bytes) throws IOException {
    Optional<String> problem = problem(name);
    if (problem.isPresent()) {
      throw new IOException("model output " + problem.get());
    }
    Path root = dir.toAbsolutePath().normalize();
    Path file = root.resolve(name).normalize();
    if (!file.startsWith(root) || file.equals(root)) {
      throw new IOException("model output '" + name + "' leads out of " + root);
    }
    Files.createDirectories(root);
    // Directory by directory, refusing links: createDirectories would follow a link out of the
    // directory and create what the name asks for there.
    Path parent = root.toRealPath();
    Path relative = root.relativize(file);
    for (int i = 0; i < relative.getNameCount() - 1; i++) {
      parent = parent.resolve(relative.getName(i));
      if (Files.isSymbolicLink(parent)) {
        throw new IOException("model output '" + name + "' goes through the symbolic link " + parent
            + "; model files are only written inside " + root);
      }
      if (!Files.isDirectory(parent)) {
        Files.createDirectory(parent);
      }
    }
    Path target = parent.resolve(relative.getFileName());
    // Its own name, not derived from the target's: a target name of 255 bytes leaves no room.
    Path tmp = parent.resolve(".model-" + UUID.randomUUID() + ".tmp");
    try {
      Files.write(tmp, bytes, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      // A link at the target itself is replaced, not followed.
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
    return target;
  }
}
