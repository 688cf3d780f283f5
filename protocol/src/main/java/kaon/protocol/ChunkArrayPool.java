package kaon.protocol;

import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Chunk arrays handed back by the all-reduce peers that consumed them, for whoever fills chunks
 * next: the tensor link's readers, Artery's deserializer ({@link TensorChunkSerializer}) and the
 * peers' own copies for neighbours in the same JVM. A megabyte chunk is a humongous object to G1
 * (regions of 1-2 MiB), which the JVM zeroes with a memset before it is overwritten anyway; in
 * bench/allreduce that memset was the largest single cost of the receiving side. A ring uses a
 * handful of chunk lengths (the chunk size and each segment's remainder), so arrays are kept per
 * length.
 *
 * <p>One pool per JVM ({@link #shared}). Thread-safe: readers and deserializers take on their own
 * threads, peers give on dispatcher threads. Bounded: arrays beyond {@code maxBytes} are left to
 * the garbage collector. Whoever gives an array must hold the only reference to it.
 */
public final class ChunkArrayPool {

  private static final ChunkArrayPool SHARED = new ChunkArrayPool(64L << 20);

  /** This JVM's pool. */
  public static ChunkArrayPool shared() {
    return SHARED;
  }

  private final long maxBytes;
  private final Map<Integer, Queue<float[]>> byLength = new ConcurrentHashMap<>();
  private final AtomicLong bytes = new AtomicLong();

  public ChunkArrayPool(long maxBytes) {
    this.maxBytes = maxBytes;
  }

  /** An array of exactly {@code length} floats with arbitrary contents. */
  public float[] take(int length) {
    Queue<float[]> arrays = byLength.get(length);
    float[] array = arrays == null ? null : arrays.poll();
    if (array == null) {
      return new float[length];
    }
    bytes.addAndGet(-(long) Float.BYTES * length);
    return array;
  }

  /** Hands {@code array} back; the caller must not read or write it afterwards. */
  public void give(float[] array) {
    long size = (long) Float.BYTES * array.length;
    if (array.length == 0 || bytes.addAndGet(size) > maxBytes) {
      bytes.addAndGet(-size);
      return;
    }
    byLength.computeIfAbsent(array.length, length -> new ConcurrentLinkedQueue<>()).add(array);
  }
}
