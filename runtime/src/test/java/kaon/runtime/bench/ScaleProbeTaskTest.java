package kaon.runtime.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import kaon.actors.data.LabeledImages;
import kaon.actors.training.ModelReplica;
import kaon.actors.training.TaskData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ScaleProbeTaskTest {

  @AfterEach
  void clearProperties() {
    System.clearProperty("kaon.scale-probe.parameters");
    System.clearProperty("kaon.scale-probe.samples");
  }

  @Test
  void theAllReduceCarriesAboutTheRequestedNumberOfFloats() {
    System.setProperty("kaon.scale-probe.parameters", "10000");
    try (ModelReplica replica = new ModelReplica(new ScaleProbeTask(), Device.cpu(), 7L)) {
      // The hidden layer's width is whole: within one width's 27 parameters below the request.
      assertTrue(replica.size() <= 10_000 && replica.size() > 10_000 - 27, "size " + replica.size());
    }
  }

  @Test
  void everyNodeBuildsTheSameLearnableExamples() {
    System.setProperty("kaon.scale-probe.samples", "500");
    TaskData a = new ScaleProbeTask().loadData(null);
    TaskData b = new ScaleProbeTask().loadData(null);
    assertEquals(500, a.train().count());
    for (int i = 0; i < a.train().count() * a.train().featureSize(); i++) {
      assertEquals(a.train().pixel(i), b.train().pixel(i), "pixel " + i);
    }
    assertArrayEquals(a.test().labels(), b.test().labels());
    LabeledImages train = a.train();
    int[] perClass = new int[10];
    for (int i = 0; i < train.count(); i++) {
      int label = train.labels()[i];
      for (int f = 0; f < 10; f++) {
        assertTrue(train.pixel(i * 16 + f) <= train.pixel(i * 16 + label), "sample " + i);
      }
      perClass[label]++;
    }
    for (int count : perClass) {
      assertTrue(count > 0, "every class occurs");
    }
  }

  @Test
  void aProbeTooSmallToMeasureIsRefused() {
    System.setProperty("kaon.scale-probe.parameters", "10");
    assertThrows(IllegalArgumentException.class, ScaleProbeTask::new);
  }
}
