package kaon.actors.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Reasons as Kaon writes them (taken from chaos reports and the coordinator's code) fall into their categories. */
class GenerationReasonsTest {

  @Test
  void kaonsOwnReasonsFallIntoTheirCategories() {
    assertEquals("submitted", GenerationReasons.of("job submitted"));
    assertEquals("node-lost", GenerationReasons.of(
        "rank 0 failed: its node pekko://kaon@127.0.0.1:29107 closed its connection (its process is gone)"));
    assertEquals("deadline", GenerationReasons.of("rank 1 failed: all-reduce of step 636 (job j, generation 2, rank 1"
        + " of 2) missed its deadline of 1000 ms: received 1 of 2 chunks; rank 0 (or a rank before it in the ring) is not"
        + " responding"));
    assertEquals("damaged-data", GenerationReasons.of("rank 0 failed: job j generation 3: chunk 0 of round 1 of step"
        + " 1223 from rank 1 to rank 0: its values do not match their checksum (CRC32C 2359c6bc, sent 1d0f69a2)"));
    assertEquals("diverged", GenerationReasons.of("rank 1 failed: step 1687 summed to a non-finite value (NaN at index 0"
        + " of 109392)"));
    assertEquals("no-device", GenerationReasons.of("rank 1 failed: no device for rank 1: all 1 devices of this node are"
        + " in use ({cpu:0=j-worker-3})"));
    assertEquals("grew", GenerationReasons.of("growing from 2 to 3 ranks: devices free"));
    assertEquals("rescaled", GenerationReasons.of("scaled to 1..2 workers"));
    assertEquals("recovered", GenerationReasons.of("ranks of generation 4 did not answer after the coordinator recovered"));
    assertEquals("other", GenerationReasons.of("something new"));
    assertTrue(GenerationReasons.ALL.contains(GenerationReasons.of(null)));
  }

  @Test
  void onlyFaultsCountAsResumptions() {
    assertTrue(GenerationReasons.answersAFault("node-lost"));
    assertTrue(GenerationReasons.answersAFault("deadline"));
    assertFalse(GenerationReasons.answersAFault("submitted"));
    assertFalse(GenerationReasons.answersAFault("grew"));
    assertFalse(GenerationReasons.answersAFault("rescaled"));
  }
}
