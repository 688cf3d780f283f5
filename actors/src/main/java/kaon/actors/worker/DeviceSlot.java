package kaon.actors.worker;

import ai.djl.Device;
import java.util.Objects;

/**
 * One device a worker can own: a GPU, or where there is none a CPU slot with its own share of the
 * cores.
 *
 * @param id unique on its node, e.g. {@code gpu:0} or {@code cpu:1}
 * @param deviceName DJL's name for the device ({@code cpu} or {@code gpu0}, as {@link Device#fromName} reads it); CPU slots share
 *     the one CPU device and differ by the threads they are given
 * @param intraOpThreads libtorch intra-op threads of the worker that owns this slot
 */
public record DeviceSlot(String id, String deviceName, int intraOpThreads) {

  public DeviceSlot {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(deviceName, "deviceName");
    if (intraOpThreads <= 0) {
      throw new IllegalArgumentException("intraOpThreads must be positive, was " + intraOpThreads);
    }
  }

  /** The DJL device arrays of the owning worker are pinned to. */
  public Device device() {
    return Device.fromName(deviceName);
  }
}
