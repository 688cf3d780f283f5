package kaon.actors.checkpoint;

/** A checkpoint that is incomplete or fails its checksum; it must never be loaded. */
public final class CheckpointDamagedException extends RuntimeException {
  public CheckpointDamagedException(String message) {
    super(message);
  }
}
