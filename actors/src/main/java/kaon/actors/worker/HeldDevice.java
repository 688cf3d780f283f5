package kaon.actors.worker;

import org.apache.pekko.actor.typed.ActorRef;

/**
 * The device a worker holds, with the training thread that lives as long as it does and keeps
 * the replica as the last completed step left it: between generations, a worker carries its
 * state in memory here. The state goes with the device; a worker without one cannot train it.
 * Plain state of one worker (no actor), used on the worker's thread.
 */
final class HeldDevice {

  private final String owner;
  private final ActorRef<NodeAgent.Command> nodeAgent;
  private final RunThread.Factory threads;
  private final ActorRef<RunEvent> events;
  private DeviceSlot device;
  private RunThread run;
  /** The step whose state the thread holds while no generation runs (-1: none), and its size. */
  private long heldStep = -1;
  private int heldBytes;

  /** The device of {@code owner} (the worker's entity id); its thread tells {@code events}. */
  HeldDevice(String owner, ActorRef<NodeAgent.Command> nodeAgent, RunThread.Factory threads, ActorRef<RunEvent> events) {
    this.owner = owner;
    this.nodeAgent = nodeAgent;
    this.threads = threads;
    this.events = events;
  }

  boolean held() {
    return device != null;
  }

  String id() {
    return device.id();
  }

  /** The node agent granted {@code slot}. */
  void granted(DeviceSlot slot) {
    device = slot;
  }

  /** Hands {@code assignment} to the thread (started if there is none yet); it readies the replica. */
  RunThread assign(RunThread.Assignment assignment) {
    if (run == null) {
      run = threads.start(owner, device, events);
    }
    heldStep = -1;
    run.assign(assignment);
    return run;
  }

  /** The thread ended a run: it holds that run's last state, unless the thread itself ended. */
  void runEnded(RunEvent.RunEnded ended) {
    if (ended.threadEnded()) {
      run = null;
    }
    heldStep = ended.heldStep();
    heldBytes = ended.stateBytes();
  }

  /** The step whose state the thread holds (-1: none). */
  long heldStep() {
    return heldStep;
  }

  /** The size of that state, encoded. */
  int heldBytes() {
    return heldBytes;
  }

  /** Gives the device back to the node agent, and the state with it. */
  void release() {
    stopThread();
    heldStep = -1;
    heldBytes = 0;
    // Also without a device: one granted after its ask timed out is freed too.
    nodeAgent.tell(new NodeAgent.ReleaseDevice(owner));
    device = null;
  }

  /** Ends the thread (the worker stops); the node agent sees its owner stop and frees the device. */
  void stopThread() {
    if (run != null) {
      run.release();
      run = null;
    }
  }
}
