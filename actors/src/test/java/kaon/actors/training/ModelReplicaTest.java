package kaon.actors.training;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import kaon.actors.data.EpochSampler;
import kaon.actors.tasks.FashionMnistCnnTask;
import kaon.actors.tasks.FashionMnistMlpTask;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelReplicaTest {

  private static TaskData data;

  @BeforeAll
  static void prepare() {
    LocalGradientCollector.prepareThread(1);
    data = TaskCatalog.load(ModelReplicaTest.class.getClassLoader())
        .data(new FashionMnistMlpTask(), null);
  }

  @Test
  void replicasWithTheSameSeedStartIdentical() {
    try (ModelReplica a = new ModelReplica(new FashionMnistMlpTask(), Device.cpu(), 42);
        ModelReplica b = new ModelReplica(new FashionMnistMlpTask(), Device.cpu(), 42);
        ModelReplica c = new ModelReplica(new FashionMnistMlpTask(), Device.cpu(), 43)) {
      assertEquals(109_386, a.size());
      assertEquals(a.digest(), b.digest());
      assertNotEquals(a.digest(), c.digest());
    }
  }

  @Test
  void theDigestIsTheSha256OfTheParametersFile(@TempDir Path dir) throws Exception {
    try (ModelReplica a = new ModelReplica(new FashionMnistMlpTask(), Device.cpu(), 42);
        ModelReplica b = new ModelReplica(new FashionMnistMlpTask(), Device.cpu(), 7)) {
      byte[] file = a.parametersFile();
      assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(file)), a.digest());
      // What a client downloads loads into a replica of the task, which then has the same digest.
      Files.write(dir.resolve("mlp.params"), file);
      b.loadParameters(dir.resolve("mlp.params"));
      assertEquals(a.digest(), b.digest());
      assertArrayEquals(file, b.parametersFile());
    }
  }

  @Test
  void cnnHasTheReferenceParameterCount() {
    try (ModelReplica cnn = new ModelReplica(new FashionMnistCnnTask(), Device.cpu(), 42)) {
      assertEquals(225_034, cnn.size());
    }
  }

  @Test
  void oneEpochOfSgdLearnsFashionMnist() {
    FashionMnistMlpTask task = new FashionMnistMlpTask();
    try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 42)) {
      Optimizer sgd = Optimizers.create(OptimizerSpec.sgd(0.1f, 0f), replica.manager());
      EpochSampler sampler = new EpochSampler(42, data.train().count(), 128);
      int[] permutation = sampler.permutation(0);
      float[] flat = new float[replica.size()];
      long t0 = System.nanoTime();
      for (int step = 0; step < sampler.stepsPerEpoch(); step++) {
        replica.computeGradients(data.train(), sampler.slice(permutation, step, 0, 1), flat);
        replica.applyGradients(flat, 1f / 128, sgd);
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      int correct = replica.countCorrect(data.test(), 0, data.test().count(), 1000);
      System.out.printf("1 epoch: %.2f s, %.0f samples/s, test acc %.4f, names %s%n",
          seconds, sampler.stepsPerEpoch() * 128 / seconds, correct / 10000.0, replica.parameterNames());
      assertTrue(correct > 7800, "test accuracy after one epoch was " + correct / 100.0 + "%");
      assertEquals(sampler.stepsPerEpoch(), sgd.steps());
    }
  }

  @Test
  void gradientsStayTheSameWhileTheGarbageCollectorRunsAllTheTime() throws Exception {
    // A graph that keeps a tensor DJL backed with a Java direct buffer it already let go of reads
    // freed memory in backward once the GC has run in between (it did: a scalar of mean.mul(n)).
    // Another thread asks for a GC over and over; every step's gradient must equal the same
    // slice's gradient computed again at once, bit for bit.
    FashionMnistMlpTask task = new FashionMnistMlpTask();
    java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
    Thread collector = new Thread(() -> {
      while (!done.get()) {
        System.gc();
      }
    }, "gc-all-the-time");
    try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 5)) {
      collector.start();
      EpochSampler sampler = new EpochSampler(5, data.train().count(), 64);
      int[] permutation = sampler.permutation(0);
      float[] first = new float[replica.size()];
      float[] again = new float[replica.size()];
      // Before the fix this failed within 2 steps; each full GC takes a few ms here.
      for (int step = 0; step < 30; step++) {
        int[] slice = sampler.slice(permutation, step, 0, 1);
        replica.computeGradients(data.train(), slice, first);
        replica.computeGradients(data.train(), slice, again);
        assertTrue(java.util.Arrays.equals(first, again), "step " + step + ": the gradients differ between two computations");
      }
    } finally {
      done.set(true);
      collector.join();
    }
  }

  @Test
  void optimizerStateRoundTripsThroughExport() {
    // Two replicas: one trains 3 steps with momentum, exports parameters and state; the other imports
    // them and both take the same 4th step. Identical bits after it prove the export is complete.
    FashionMnistMlpTask task = new FashionMnistMlpTask();
    for (OptimizerSpec spec : List.of(OptimizerSpec.sgd(0.1f, 0.9f), OptimizerSpec.adam(0.001f))) {
      try (ModelReplica a = new ModelReplica(task, Device.cpu(), 1);
          ModelReplica b = new ModelReplica(task, Device.cpu(), 2)) {
        Optimizer optA = Optimizers.create(spec, a.manager());
        Optimizer optB = Optimizers.create(spec, b.manager());
        float[] flat = new float[a.size()];
        int[] batch = new int[32];
        for (int step = 0; step < 4; step++) {
          for (int i = 0; i < batch.length; i++) {
            batch[i] = step * 32 + i;
          }
          if (step == 3) {
            b.importParameters(a.exportParameters());
            optB.importState(optA.exportState());
            assertEquals(optA.steps(), optB.steps());
            assertEquals(a.digest(), b.digest());
            b.computeGradients(data.train(), batch, flat);
            b.applyGradients(flat, 1f / 32, optB);
          }
          a.computeGradients(data.train(), batch, flat);
          a.applyGradients(flat, 1f / 32, optA);
        }
        assertEquals(a.digest(), b.digest(), spec.kind() + " state did not round trip");
      }
    }
  }

  @Test
  void optimizerStateIsExportedParameterByParameter() {
    // The optimizer updates every parameter as one tensor, but checkpoints and state handed to a
    // joining rank name state per parameter, as per-parameter updates kept it: parameter by
    // parameter, each parameter's kinds in the order Adam creates them, shaped like the parameter.
    FashionMnistMlpTask task = new FashionMnistMlpTask();
    try (ModelReplica replica = new ModelReplica(task, Device.cpu(), 3)) {
      Optimizer adam = Optimizers.create(OptimizerSpec.adam(0.001f), replica.manager());
      float[] flat = new float[replica.size()];
      int[] batch = java.util.stream.IntStream.range(0, 16).toArray();
      replica.computeGradients(data.train(), batch, flat);
      replica.applyGradients(flat, 1f / 16, adam);
      List<kaon.protocol.NamedTensor> state = adam.exportState();
      List<kaon.protocol.NamedTensor> parameters = replica.exportParameters();
      assertEquals(Optimizer.STEPS_KEY, state.get(0).name());
      assertEquals(1 + 2 * parameters.size(), state.size());
      for (int p = 0; p < parameters.size(); p++) {
        for (int k = 0; k < 2; k++) {
          kaon.protocol.NamedTensor t = state.get(1 + 2 * p + k);
          assertEquals(parameters.get(p).name() + (k == 0 ? "/m" : "/v"), t.name());
          assertArrayEquals(parameters.get(p).shape(), t.shape());
          assertEquals(parameters.get(p).values().length, t.values().length);
        }
      }
      // After one step from zero, m is (1 - beta1) times the gradient: not all zero anywhere.
      for (kaon.protocol.NamedTensor t : state.subList(1, state.size())) {
        float sum = 0;
        for (float v : t.values()) {
          sum += Math.abs(v);
        }
        assertTrue(sum > 0, t.name() + " is all zeros");
      }
    }
  }
}
