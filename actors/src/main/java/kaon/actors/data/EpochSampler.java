package kaon.actors.data;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Decides which samples each data-parallel rank trains on at each step, identically on every node
 * and across restarts.
 *
 * <p>Each epoch has its own permutation of the data set, derived only from {@code (seed, epoch)}.
 * Step {@code s} trains on positions {@code [s*B, (s+1)*B)} of that permutation, where {@code B}
 * is the global batch, and rank {@code r} of {@code W} takes the contiguous part {@code
 * [floor(r*B/W), floor((r+1)*B/W))} of it. Because the global batch does not depend on the world
 * size, a job that loses or gains workers resumes at the same step with the same samples, only
 * split differently; and a checkpoint needs to store nothing but {@code (epoch, step)}.
 *
 * <p>The last partial batch of an epoch is dropped (PyTorch's {@code drop_last}), so every step
 * has exactly {@code B} samples and the gradient average has the same weight at every step.
 *
 * <p><b>Compatibility:</b> the permutation for a given {@code (seed, epoch)} must never change,
 * since checkpoints store a cursor into it. {@code EpochSamplerTest} pins its first entries.
 */
public final class EpochSampler {

  /** The golden ratio in 64-bit fixed point; an odd constant that spreads consecutive epochs. */
  private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

  private final long seed;
  private final int datasetSize;
  private final int globalBatch;

  /**
   * Creates a sampler.
   *
   * @param seed the job's shuffle seed
   * @param datasetSize number of samples, at least 1
   * @param globalBatch samples per step across all ranks, in 1..datasetSize
   * @throws IllegalArgumentException naming the offending argument
   */
  public EpochSampler(long seed, int datasetSize, int globalBatch) {
    if (datasetSize < 1) {
      throw new IllegalArgumentException("datasetSize (" + datasetSize + ") must be at least 1");
    }
    if (globalBatch < 1) {
      throw new IllegalArgumentException("globalBatch (" + globalBatch + ") must be at least 1");
    }
    if (globalBatch > datasetSize) {
      throw new IllegalArgumentException(
          "globalBatch (" + globalBatch + ") must not exceed datasetSize (" + datasetSize + ")");
    }
    this.seed = seed;
    this.datasetSize = datasetSize;
    this.globalBatch = globalBatch;
  }

  /**
   * Returns the number of full global batches in one epoch.
   *
   * @return {@code datasetSize / globalBatch}; the remainder is not trained on in this epoch
   */
  public int stepsPerEpoch() {
    return datasetSize / globalBatch;
  }

  /**
   * Returns the order in which the samples are visited in one epoch.
   *
   * <p>A Fisher–Yates shuffle of {@code 0..datasetSize-1} driven by a {@link SplittableRandom}
   * seeded with {@link #epochSeed(long, int)}.
   *
   * @param epoch the epoch, from 0
   * @return a new array holding each index in {@code 0..datasetSize-1} exactly once
   * @throws IllegalArgumentException if {@code epoch} is negative
   */
  public int[] permutation(int epoch) {
    if (epoch < 0) {
      throw new IllegalArgumentException("epoch (" + epoch + ") must not be negative");
    }
    int[] order = new int[datasetSize];
    for (int i = 0; i < datasetSize; i++) {
      order[i] = i;
    }
    SplittableRandom random = new SplittableRandom(epochSeed(seed, epoch));
    for (int i = datasetSize - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int swap = order[i];
      order[i] = order[j];
      order[j] = swap;
    }
    return order;
  }

  /**
   * Returns the sample indices rank {@code rank} of {@code worldSize} trains on at step {@code
   * step}.
   *
   * @param permutation this epoch's {@link #permutation(int)}
   * @param step the step within the epoch, in {@code 0..stepsPerEpoch()-1}
   * @param rank the rank, in {@code 0..worldSize-1}
   * @param worldSize number of ranks, in {@code 1..globalBatch}
   * @return a new array of {@link #sliceLength(int, int, int)} indices, in permutation order
   * @throws IllegalArgumentException naming the offending argument
   */
  public int[] slice(int[] permutation, int step, int rank, int worldSize) {
    if (permutation == null || permutation.length != datasetSize) {
      throw new IllegalArgumentException(
          "permutation must have datasetSize (" + datasetSize + ") entries but has "
              + (permutation == null ? "none" : permutation.length));
    }
    if (step < 0 || step >= stepsPerEpoch()) {
      throw new IllegalArgumentException(
          "step (" + step + ") must be in 0.." + (stepsPerEpoch() - 1));
    }
    int from = step * globalBatch + sliceStart(rank, worldSize, globalBatch);
    return Arrays.copyOfRange(permutation, from, from + sliceLength(rank, worldSize, globalBatch));
  }

  /**
   * Returns where a rank's slice starts within a global batch.
   *
   * @param rank the rank, in {@code 0..worldSize-1}
   * @param worldSize number of ranks, in {@code 1..globalBatch}
   * @param globalBatch samples per step across all ranks, at least 1
   * @return {@code floor(rank * globalBatch / worldSize)}
   * @throws IllegalArgumentException naming the offending argument
   */
  public static int sliceStart(int rank, int worldSize, int globalBatch) {
    checkRank(rank, worldSize, globalBatch);
    return boundary(rank, worldSize, globalBatch);
  }

  /**
   * Returns how many samples of a global batch a rank trains on; ranks differ by at most one.
   *
   * @param rank the rank, in {@code 0..worldSize-1}
   * @param worldSize number of ranks, in {@code 1..globalBatch}
   * @param globalBatch samples per step across all ranks, at least 1
   * @return {@code floor((rank + 1) * globalBatch / worldSize) - floor(rank * globalBatch /
   *     worldSize)}
   * @throws IllegalArgumentException naming the offending argument
   */
  public static int sliceLength(int rank, int worldSize, int globalBatch) {
    checkRank(rank, worldSize, globalBatch);
    return boundary(rank + 1, worldSize, globalBatch) - boundary(rank, worldSize, globalBatch);
  }

  /**
   * Derives the seed of one epoch's shuffle. Stable forever: checkpoints depend on it.
   *
   * <p>{@code z = seed + GOLDEN_GAMMA * (epoch + 1)}, then SplitMix64's finaliser ({@code z ^=
   * z >>> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >>> 27; z *= 0x94D049BB133111EB; z ^= z >>> 31}).
   * The multiply by an odd constant keeps distinct epochs distinct. The finaliser is needed
   * because {@code SplittableRandom} advances its state by this same constant at every draw:
   * without it, epoch {@code e + 1} would replay epoch {@code e}'s random stream shifted by one.
   *
   * @param seed the job's shuffle seed
   * @param epoch the epoch
   * @return the seed for that epoch's {@link SplittableRandom}
   */
  static long epochSeed(long seed, int epoch) {
    long z = seed + GOLDEN_GAMMA * (epoch + 1L);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  private static void checkRank(int rank, int worldSize, int globalBatch) {
    if (globalBatch < 1) {
      throw new IllegalArgumentException("globalBatch (" + globalBatch + ") must be at least 1");
    }
    if (worldSize < 1 || worldSize > globalBatch) {
      throw new IllegalArgumentException(
          "worldSize (" + worldSize + ") must be in 1..globalBatch (" + globalBatch + ")");
    }
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException(
          "rank (" + rank + ") must be in 0.." + (worldSize - 1) + " for worldSize " + worldSize);
    }
  }

  /** Unchecked {@code floor(rank * globalBatch / worldSize)}, in long: the product may overflow. */
  private static int boundary(int rank, int worldSize, int globalBatch) {
    return (int) ((long) rank * globalBatch / worldSize);
  }
}
