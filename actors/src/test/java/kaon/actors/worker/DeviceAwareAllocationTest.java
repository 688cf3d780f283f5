package kaon.actors.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.Test;

/** Where a worker shard goes, and when it waits for a node's shard region instead. */
class DeviceAwareAllocationTest {

  private static final Address A = new Address("pekko", "kaon", "10.0.0.1", 25520);
  private static final Address B = new Address("pekko", "kaon", "10.0.0.2", 25520);
  private static final Address C = new Address("pekko", "kaon", "10.0.0.3", 25520);

  private static Map<Address, Integer> nodes(Object... pairs) {
    Map<Address, Integer> m = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      m.put((Address) pairs[i], (Integer) pairs[i + 1]);
    }
    return m;
  }

  @Test
  void theNodeWithTheMostAvailableDevicesGetsTheWorker() {
    assertEquals(B, DeviceAwareAllocation.place(nodes(A, 0, B, 2), nodes(A, 0, B, 2), true));
    // Equals: the first in the regions' order.
    assertEquals(A, DeviceAwareAllocation.place(nodes(A, 1, B, 1), nodes(A, 1, B, 1), true));
  }

  @Test
  void aWorkerWaitsWhileNoNodeWithARegionHasAFreeDevice() {
    // C has joined (the census sees its device, sharding not its region yet), or a worker the new
    // generation left out is still giving its device back: either way, one is about to be free.
    assertNull(DeviceAwareAllocation.place(nodes(A, 0, B, 0), nodes(A, 0, B, 0), true));
  }

  @Test
  void aReservationAloneNeverMakesAWorkerWaitButTheFreeDeviceBreaksTheTie() {
    // B's free device is reserved for a shard that may never take it (a lost rank's worker,
    // allocated only to be told to stop): the worker goes to B rather than waiting.
    assertEquals(B, DeviceAwareAllocation.place(nodes(A, 0, B, 0), nodes(A, 0, B, 1), true));
  }

  @Test
  void aNodeWithAFreeDeviceBeatsAFullOneWhateverItsReservations() {
    // B's one free device is reserved twice over, by workers that never took one; A has none.
    assertEquals(B, DeviceAwareAllocation.place(nodes(A, 0, B, -1), nodes(A, 0, B, 1), true));
    assertEquals(B, DeviceAwareAllocation.place(nodes(A, 0, B, -1), nodes(A, 0, B, 1), false));
  }

  @Test
  void afterWaitingLongEnoughTheLeastLoadedNodeGetsItAnyway() {
    // Its agent then refuses the device, and the job hears why.
    assertEquals(A, DeviceAwareAllocation.place(nodes(A, 0, B, -1), nodes(A, 0, B, 0), false));
  }

  @Test
  void aReservedWorkerThatHasTakenItsDeviceIsCountedOnceNotTwice() {
    // 4 devices; w1 and w2 allocated lately, w1 already owns one (the census shows it), w2 not yet.
    assertEquals(2, DeviceAwareAllocation.available(3, Set.of("w0", "w1"), Set.of("w1", "w2")));
    // All four taken by workers allocated lately: none available, not minus four.
    assertEquals(0, DeviceAwareAllocation.available(0, Set.of("w1", "w2", "w3", "w4"), Set.of("w1", "w2", "w3", "w4")));
    // A reserved worker its node refused (it owns nothing) still holds its reservation until it expires.
    assertEquals(-1, DeviceAwareAllocation.available(0, Set.of("a", "b"), Set.of("c")));
  }
}
