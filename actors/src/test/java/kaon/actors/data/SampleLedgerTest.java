package kaon.actors.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class SampleLedgerTest {

  private static final int SAMPLES = 60_000;
  private static final int BATCH = 64;

  /** The ledger every rank builds: each rank's slice sums, added up as the all-reduce would. */
  private static SampleLedger reduced(EpochSampler sampler, int[] permutation, int steps, int worldSize) {
    SampleLedger ledger = SampleLedger.EMPTY;
    for (int step = 0; step < steps; step++) {
      float[] sum = new float[SampleLedger.FLOATS];
      for (int rank = 0; rank < worldSize; rank++) {
        float[] mine = new float[SampleLedger.FLOATS];
        SampleLedger.writeSlice(sampler.slice(permutation, step, rank, worldSize), mine, 0);
        for (int i = 0; i < mine.length; i++) {
          sum[i] += mine[i];
        }
      }
      ledger = ledger.plusReduced(sum, 0);
    }
    return ledger;
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 5})
  void theRanksSlicesOfAnEpochAddUpToItsPlan(int worldSize) {
    EpochSampler sampler = new EpochSampler(42, SAMPLES, BATCH);
    int[] permutation = sampler.permutation(3);
    int steps = sampler.stepsPerEpoch();
    SampleLedger planned = SampleLedger.ofPlanned(permutation, steps, BATCH);
    assertEquals((long) steps * BATCH, planned.samples());
    assertEquals(planned, reduced(sampler, permutation, steps, worldSize));
  }

  @Test
  void anEpochThatChangesWorldSizeMidwayStillAddsUp() {
    EpochSampler sampler = new EpochSampler(7, SAMPLES, BATCH);
    int[] permutation = sampler.permutation(0);
    SampleLedger ledger = SampleLedger.EMPTY;
    for (int step = 0; step < sampler.stepsPerEpoch(); step++) {
      int worldSize = step < 300 ? 3 : 2;
      for (int rank = 0; rank < worldSize; rank++) {
        float[] mine = new float[SampleLedger.FLOATS];
        SampleLedger.writeSlice(sampler.slice(permutation, step, rank, worldSize), mine, 0);
        ledger = ledger.plusReduced(mine, 0);
      }
    }
    assertEquals(SampleLedger.ofPlanned(permutation, sampler.stepsPerEpoch(), BATCH), ledger);
  }

  @Test
  void aRepeatedOrSkippedStepShows() {
    EpochSampler sampler = new EpochSampler(42, SAMPLES, BATCH);
    int[] permutation = sampler.permutation(1);
    int steps = sampler.stepsPerEpoch();
    SampleLedger planned = SampleLedger.ofPlanned(permutation, steps, BATCH);
    assertNotEquals(planned, reduced(sampler, permutation, steps - 1, 2));
    SampleLedger again = reduced(sampler, permutation, steps, 2);
    float[] step5 = new float[SampleLedger.FLOATS];
    SampleLedger.writeSlice(sampler.slice(permutation, 5, 0, 1), step5, 0);
    assertNotEquals(planned, again.plusReduced(step5, 0));
  }

  @Test
  void aSampleSwappedForItsNeighbourShows() {
    int[] planned = {10, 20, 30, 40};
    int[] used = {10, 21, 29, 40};
    float[] sums = new float[SampleLedger.FLOATS];
    SampleLedger.writeSlice(used, sums, 0);
    SampleLedger ledger = SampleLedger.EMPTY.plusReduced(sums, 0);
    SampleLedger plan = SampleLedger.ofPlanned(planned, 1, 4);
    assertEquals(plan.samples(), ledger.samples());
    assertEquals(plan.indexSum(), ledger.indexSum());
    assertNotEquals(plan, ledger);
  }

  @Test
  void onlyBatchesWhoseSumsStayExactAreVerifiable() {
    assertTrue(SampleLedger.verifiable(4096));
    assertFalse(SampleLedger.verifiable(4097));
  }
}
