package kaon.actors.allreduce;

import java.time.Duration;
import kaon.protocol.LentBuffer;

/**
 * The reduction an {@link AllReducePeer} has in flight, with {@code R}, where its result goes:
 * plain state of the peer, on its thread.
 */
final class ReduceRound<R> {
  final long step;
  final float[] buffer;
  final R replyTo;
  final long startNanos = System.nanoTime();
  final int expected;
  final Duration deadline;
  int received;
  /** Regions of {@link #buffer} lent to Artery's serializer; null until the first. */
  LentBuffer lent;

  ReduceRound(long step, float[] buffer, R replyTo, int expected, Duration deadline) {
    this.step = step;
    this.buffer = buffer;
    this.replyTo = replyTo;
    this.expected = expected;
    this.deadline = deadline;
  }
}
