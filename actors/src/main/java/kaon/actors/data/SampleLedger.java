package kaon.actors.data;

/**
 * Which training samples an epoch has used, as order-free sums over their indices: how many, the
 * sum of the indices and the sum of a hash of each. Two ledgers of the same epoch are equal when
 * the same multiset of samples was used (a sample skipped, repeated, or swapped for another shows
 * in at least one sum, bar a collision of all three).
 *
 * <p>The ledger a job keeps is built from what the ranks actually consumed: each rank writes its
 * slice's sums into the tail of the gradient buffer ({@link #writeSlice}), the all-reduce adds up
 * every rank's, and every rank folds the reduced sums into its ledger ({@link #plusReduced}). It
 * travels with the training state (checkpoints), so at the end of an epoch, however many
 * generations it took, it must equal the ledger of the epoch's planned batches ({@link
 * #ofPlanned}): every sample of the epoch used exactly once.
 *
 * <p>The tail holds small integers only (each sum is at most {@code slice * 4095}), exact in a
 * float for slices up to 4096 samples; larger global batches are not verified ({@link
 * #verifiable}).
 *
 * @param samples samples used
 * @param indexSum sum of their indices
 * @param indexHash sum of a 12-bit hash of each index
 */
public record SampleLedger(long samples, long indexSum, long indexHash) {

  /** Floats a rank appends to its gradient buffer: count, low and high index bits, hash. */
  public static final int FLOATS = 4;

  /** Largest global batch whose sums stay exact in float32. */
  private static final int MAX_EXACT_BATCH = 4096;

  /** An epoch that has not started. */
  public static final SampleLedger EMPTY = new SampleLedger(0, 0, 0);

  /** Whether ledgers of this global batch are exact (see the class comment). */
  public static boolean verifiable(int globalBatch) {
    return globalBatch <= MAX_EXACT_BATCH;
  }

  /** Writes the sums of {@code indices} (one rank's slice) into {@code buffer[offset..offset+4)}. */
  public static void writeSlice(int[] indices, float[] buffer, int offset) {
    long low = 0;
    long high = 0;
    long hash = 0;
    for (int index : indices) {
      low += index & 0xfff;
      high += index >>> 12;
      hash += hash(index);
    }
    buffer[offset] = indices.length;
    buffer[offset + 1] = low;
    buffer[offset + 2] = high;
    buffer[offset + 3] = hash;
  }

  /** This ledger plus the all-reduced sums in {@code buffer[offset..offset+4)}. */
  public SampleLedger plusReduced(float[] buffer, int offset) {
    long low = (long) buffer[offset + 1];
    long high = (long) buffer[offset + 2];
    return new SampleLedger(samples + (long) buffer[offset], indexSum + low + (high << 12),
        indexHash + (long) buffer[offset + 3]);
  }

  /** The ledger of {@code steps} planned global batches of {@code batch} from {@code permutation}. */
  public static SampleLedger ofPlanned(int[] permutation, int steps, int batch) {
    long samples = 0;
    long sum = 0;
    long hash = 0;
    for (int i = 0; i < steps * batch; i++) {
      int index = permutation[i];
      samples++;
      sum += index;
      hash += hash(index);
    }
    return new SampleLedger(samples, sum, hash);
  }

  private static int hash(int index) {
    // Fibonacci hashing: spreads neighbouring indices, so that a swap of one sample for its
    // neighbour changes this sum even when it changes the plain sum by one only.
    return (index * 0x9E3779B1) >>> 20;
  }
}
