package kaon.actors.allreduce;

import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Chunk arrays handed back by the peers that consumed them, for the link's readers to fill
 * again. A megabyte chunk is a humongous object to G1 (regions of 1-2 MiB), which the JVM zeroes
 * with a memset before the reader overwrites all of it; in bench/allreduce that memset was the
 * largest single cost of the receiving side. A ring uses a handful of chunk lengths (the chunk
 * size and each segment's remainder), so arrays are kept per length.
 *
 * <p>Thread-safe: readers take on their own threads, peers give on dispatcher threads. Bounded:
 * arrays beyond {@code maxBytes} are left to the garbage collector.
 */
final class ChunkArrayPool {

  private final long maxBytes;
  private final Map<Integer, Queue<float[]>> byLength = new ConcurrentHashMap<>();
  private final AtomicLong bytes = new AtomicLong();

  ChunkArrayPool(long maxBytes) {
    this.maxBytes = maxBytes;
  }

  /** An array of exactly {@code length} floats with arbitrary contents. */
  float[] take(int length) {
    Queue<float[]> arrays = byLength.get(length);
    float[] array = arrays == null ? null : arrays.poll();
    if (array == null) {
      return new float[length];
    }
    bytes.addAndGet(-(long) Float.BYTES * length);
    return array;
  }

  /** Hands {@code array} back; the caller must not read or write it afterwards. */
  void give(float[] array) {
    long size = (long) Float.BYTES * array.length;
    if (array.length == 0 || bytes.addAndGet(size) > maxBytes) {
      bytes.addAndGet(-size);
      return;
    }
    byLength.computeIfAbsent(array.length, length -> new ConcurrentLinkedQueue<>()).add(array);
  }
}
