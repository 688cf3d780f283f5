package kaon.actors.worker;

import kaon.actors.allreduce.SharedReduction;
import kaon.actors.training.JobSpec;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A worker's training thread as the worker drives it ({@link TrainingRun}; a fake in the worker's
 * tests). Its answers come back as {@link RunEvent}s. Every method returns at once: the thread
 * works through its orders on its own.
 */
interface RunThread {

  /**
   * One generation of this rank.
   *
   * @param checkpoint the checkpoint to load, or empty
   * @param resumeStep the step the generation starts with
   * @param fromMembers the state comes from the members' memory: kept if this rank holds it at
   *     {@code resumeStep}, else received from the source rank at {@link Start}
   */
  record Assignment(
      String jobId,
      JobSpec spec,
      long generation,
      int rank,
      int worldSize,
      ActorRef<RingMessage> peer,
      String checkpoint,
      long resumeStep,
      boolean fromMembers) {}

  /**
   * The ring of {@code generation} is connected. {@code syncSource} is the rank whose state every
   * rank receives before the first step ({@code syncBytes} long), or -1 when every rank has it.
   * {@code shared} is the generation's reduction in shared memory when all its ranks run in this
   * JVM, else null: the ring's peer reduces.
   */
  record Start(long generation, int syncSource, int syncBytes, SharedReduction shared) {}

  /** Prepares {@code assignment}; the thread answers with {@link RunEvent.ReplicaReady}. */
  void assign(Assignment assignment);

  /** Lets the generation start its first step; the ring is connected by then. */
  void begin(Start start);

  /** Asks generations up to {@code generation} to stop at the next step boundary and park. */
  void requestStop(long generation);

  /** Ends the thread (at the next step boundary); the replica and its state are dropped. */
  void release();

  /** Starts the training thread of a device. */
  interface Factory {
    /** A thread named after worker {@code name}, training on {@code device}, telling {@code events}. */
    RunThread start(String name, DeviceSlot device, ActorRef<RunEvent> events);
  }
}
