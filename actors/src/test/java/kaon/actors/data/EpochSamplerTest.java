package kaon.actors.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class EpochSamplerTest {

  /** Not a multiple of either batch size, so the dropped remainder is exercised. */
  private static final int DATASET_SIZE = 1_005;

  @Test
  void sameSeedAndEpochGiveSamePermutation() {
    int[] first = new EpochSampler(7, DATASET_SIZE, 10).permutation(3);
    int[] second = new EpochSampler(7, DATASET_SIZE, 10).permutation(3);

    assertArrayEquals(first, second);
  }

  @Test
  void differentEpochOrSeedGivesDifferentPermutation() {
    EpochSampler sampler = new EpochSampler(7, DATASET_SIZE, 10);

    assertFalse(Arrays.equals(sampler.permutation(0), sampler.permutation(1)));
    int[] otherSeed = new EpochSampler(8, DATASET_SIZE, 10).permutation(0);
    assertFalse(Arrays.equals(sampler.permutation(0), otherSeed));
  }

  @Test
  void permutationHoldsEveryIndexOnce() {
    int[] permutation = new EpochSampler(7, DATASET_SIZE, 10).permutation(0);

    int[] sorted = permutation.clone();
    Arrays.sort(sorted);
    assertArrayEquals(IntStream.range(0, DATASET_SIZE).toArray(), sorted);
  }

  @Test
  void firstEntriesForSeed42AreFrozen() {
    // Checkpoints store (epoch, step) and rely on this exact order: if these numbers change,
    // every existing checkpoint resumes on different samples than it was trained with.
    int[] permutation = new EpochSampler(42, 60_000, 128).permutation(0);

    assertArrayEquals(
        new int[] {45117, 9201, 20281, 20093, 27872, 30174, 12152, 31830},
        Arrays.copyOf(permutation, 8));
  }

  static Stream<Arguments> worldAndBatchSizes() {
    return Stream.of(128, 10)
        .flatMap(batch -> IntStream.rangeClosed(1, 7).mapToObj(w -> Arguments.of(w, batch)));
  }

  @ParameterizedTest(name = "worldSize {0}, globalBatch {1}")
  @MethodSource("worldAndBatchSizes")
  void epochUsesEveryKeptPositionExactlyOnce(int worldSize, int globalBatch) {
    EpochSampler sampler = new EpochSampler(11, DATASET_SIZE, globalBatch);
    int[] permutation = sampler.permutation(2);
    int kept = sampler.stepsPerEpoch() * globalBatch;
    int[] uses = new int[DATASET_SIZE];
    List<Integer> visited = new ArrayList<>();

    for (int step = 0; step < sampler.stepsPerEpoch(); step++) {
      for (int rank = 0; rank < worldSize; rank++) {
        int[] slice = sampler.slice(permutation, step, rank, worldSize);
        int even = globalBatch / worldSize;
        assertTrue(slice.length == even || slice.length == even + 1, "uneven by more than one");
        for (int index : slice) {
          uses[index]++;
          visited.add(index);
        }
      }
    }

    // Ranks in order, steps in order, walk the permutation from the start with no gap.
    assertArrayEquals(
        Arrays.copyOf(permutation, kept), visited.stream().mapToInt(Integer::intValue).toArray());
    for (int position = 0; position < DATASET_SIZE; position++) {
      assertEquals(position < kept ? 1 : 0, uses[permutation[position]], "position " + position);
    }
  }

  @ParameterizedTest(name = "worldSize {0}, globalBatch {1}")
  @MethodSource("worldAndBatchSizes")
  void rankSlicesConcatenateToSingleRankBatch(int worldSize, int globalBatch) {
    EpochSampler sampler = new EpochSampler(11, DATASET_SIZE, globalBatch);
    int[] permutation = sampler.permutation(0);
    int lastStep = sampler.stepsPerEpoch() - 1;

    for (int step : new int[] {0, lastStep}) {
      int[] whole = sampler.slice(permutation, step, 0, 1);
      int[] joined =
          IntStream.range(0, worldSize)
              .flatMap(rank -> Arrays.stream(sampler.slice(permutation, step, rank, worldSize)))
              .toArray();
      assertArrayEquals(whole, joined, "step " + step);
    }
  }

  @Test
  void dropsLastPartialBatch() {
    assertEquals(7, new EpochSampler(0, DATASET_SIZE, 128).stepsPerEpoch());
    assertEquals(100, new EpochSampler(0, DATASET_SIZE, 10).stepsPerEpoch());
    assertEquals(1, new EpochSampler(0, 5, 5).stepsPerEpoch());
  }

  @Test
  void splitsUnevenBatchByFloorBoundaries() {
    // 10 over 3 ranks: boundaries floor(0), floor(10/3) = 3, floor(20/3) = 6, 10.
    assertEquals(0, EpochSampler.sliceStart(0, 3, 10));
    assertEquals(3, EpochSampler.sliceStart(1, 3, 10));
    assertEquals(6, EpochSampler.sliceStart(2, 3, 10));
    assertEquals(3, EpochSampler.sliceLength(0, 3, 10));
    assertEquals(3, EpochSampler.sliceLength(1, 3, 10));
    assertEquals(4, EpochSampler.sliceLength(2, 3, 10));
  }

  @Test
  void boundariesDoNotOverflowForLargeBatches() {
    int batch = Integer.MAX_VALUE;

    assertEquals(batch / 2, EpochSampler.sliceStart(1, 2, batch));
    assertEquals(batch - batch / 2, EpochSampler.sliceLength(1, 2, batch));
  }

  @Test
  void rejectsInvalidConstructorArgumentsNamingThem() {
    assertRejected("datasetSize", () -> new EpochSampler(0, 0, 1));
    assertRejected("globalBatch", () -> new EpochSampler(0, 10, 0));
    assertRejected("globalBatch", () -> new EpochSampler(0, 10, 11));
  }

  @Test
  void rejectsInvalidSliceArgumentsNamingThem() {
    EpochSampler sampler = new EpochSampler(0, DATASET_SIZE, 10);
    int[] permutation = sampler.permutation(0);

    assertRejected("epoch", () -> sampler.permutation(-1));
    assertRejected("permutation", () -> sampler.slice(new int[3], 0, 0, 1));
    assertRejected("step", () -> sampler.slice(permutation, -1, 0, 1));
    assertRejected("step", () -> sampler.slice(permutation, 100, 0, 1));
    assertRejected("worldSize", () -> sampler.slice(permutation, 0, 0, 0));
    assertRejected("worldSize", () -> sampler.slice(permutation, 0, 0, 11));
    assertRejected("rank", () -> sampler.slice(permutation, 0, -1, 2));
    assertRejected("rank", () -> sampler.slice(permutation, 0, 2, 2));
    assertRejected("globalBatch", () -> EpochSampler.sliceStart(0, 1, 0));
    assertRejected("rank", () -> EpochSampler.sliceLength(3, 3, 10));
  }

  private static void assertRejected(String argument, Executable call) {
    String message = assertThrows(IllegalArgumentException.class, call).getMessage();
    assertTrue(message.startsWith(argument + " "), message);
  }
}
