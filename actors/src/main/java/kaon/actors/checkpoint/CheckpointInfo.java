package kaon.actors.checkpoint;

/**
 * A committed checkpoint as the job's journal knows it.
 *
 * @param id checkpoint id in the checkpoint store
 * @param step optimizer steps it contains; training resumes with this step
 * @param epoch 0-based epoch of that step
 * @param bytes size of its payload
 * @param sha256 checksum of its payload, hex
 */
public record CheckpointInfo(String id, long step, int epoch, long bytes, String sha256) {}
