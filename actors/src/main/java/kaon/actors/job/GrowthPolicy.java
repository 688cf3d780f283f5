package kaon.actors.job;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * When a job below its maximum looks for devices to grow onto, and whether what it found is worth
 * a new generation. Pure: the coordinator takes the censuses and keeps the count of fast looks.
 *
 * <p>A job below its maximum looks every {@code lookInterval} (devices another job gave back, a
 * worker dropped for being slow). After a node joins it looks every {@code fastInterval}, {@code
 * fastLooks} times: the node's agent may start a moment after the node is up (it waits for the
 * node's devices to be counted), so one look at the join could miss its devices. Growing costs a
 * pause (the ranks stop at a step boundary and the new ones receive the state), never steps.
 *
 * @param lookInterval how often a job below its maximum looks ({@code grow-look-interval})
 * @param fastInterval how often it looks after a node joined ({@code grow-after-join-interval})
 * @param fastLooks how many fast looks a join is worth ({@code grow-after-join-looks})
 */
record GrowthPolicy(Duration lookInterval, Duration fastInterval, int fastLooks) {

  /** The policy {@code settings} describe. */
  static GrowthPolicy of(JobSettings settings) {
    return new GrowthPolicy(settings.growLookInterval(), settings.growAfterJoinInterval(), settings.growAfterJoinLooks());
  }

  /**
   * How often a job of {@code worldSize} ranks (at most {@code maxWorkers}) looks now, with
   * {@code fastLooksLeft} fast looks left; empty when it does not look (inactive, or at its maximum).
   */
  Optional<Duration> lookEvery(boolean active, int worldSize, int maxWorkers, int fastLooksLeft) {
    if (!active || worldSize >= maxWorkers) {
      return Optional.empty();
    }
    return Optional.of(fastLooksLeft > 0 ? fastInterval : lookInterval);
  }

  /**
   * The world size to grow to, given {@code available} devices for this job (its own and free
   * ones); empty when that is no more than it has.
   */
  OptionalInt growTo(int available, int worldSize, int maxWorkers) {
    int target = Math.min(available, maxWorkers);
    return target > worldSize ? OptionalInt.of(target) : OptionalInt.empty();
  }
}
