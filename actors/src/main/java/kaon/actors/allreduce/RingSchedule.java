package kaon.actors.allreduce;

/**
 * Where each chunk of a ring all-reduce goes: a pure function of the world size, the buffer's
 * length and the chunk size. The buffer is cut into {@code W} segments as evenly as possible and
 * each segment into chunks of at most {@code chunkFloats}. In round {@code r} rank {@code k} sends
 * segment {@code k - r} to its right neighbour and receives segment {@code k - r - 1} from its
 * left one: the first {@code W-1} rounds add (reduce-scatter), the next {@code W-1} copy
 * (all-gather).
 *
 * @param worldSize ranks in the ring
 * @param bufferLength floats in every rank's buffer
 * @param chunkFloats most floats in one chunk
 */
record RingSchedule(int worldSize, int bufferLength, int chunkFloats) {

  /** The round after which every rank holds the whole sum. */
  int lastRound() {
    return 2 * (worldSize - 1) - 1;
  }

  /** Whether round {@code round} adds what it receives (reduce-scatter) rather than copying it. */
  boolean adds(int round) {
    return round < worldSize - 1;
  }

  /** The segment rank {@code rank} receives in round {@code round}. */
  int receivedSegment(int rank, int round) {
    return Math.floorMod(rank - round - 1, worldSize);
  }

  /** Where segment {@code segment} starts; segment {@code W} is the end of the buffer. */
  int segmentStart(int segment) {
    return (int) ((long) bufferLength * segment / worldSize);
  }

  /** Where chunk {@code chunk} of segment {@code segment} starts. */
  int chunkStart(int segment, int chunk) {
    return segmentStart(segment) + chunk * chunkFloats;
  }

  /** How many floats chunk {@code chunk} of segment {@code segment} has (0 or less: no such chunk). */
  int chunkLength(int segment, int chunk) {
    return Math.min(chunkFloats, segmentStart(segment + 1) - chunkStart(segment, chunk));
  }

  /** Chunks rank {@code rank} receives in one reduction: every round brings one whole segment. */
  int expectedChunks(int rank) {
    int total = 0;
    for (int round = 0; round <= lastRound(); round++) {
      int segment = receivedSegment(rank, round);
      int length = segmentStart(segment + 1) - segmentStart(segment);
      total += (length + chunkFloats - 1) / chunkFloats;
    }
    return total;
  }
}
