package kaon.runtime.bench;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.nio.file.Path;
import java.util.SplittableRandom;
import kaon.actors.data.LabeledImages;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskData;
import kaon.actors.training.TaskDefaults;
import kaon.actors.training.TrainingTask;

/**
 * The task {@code bench/scale} trains on many simulated devices: a device's compute is a fixed
 * sleep in each training forward pass, and the model is sized to make the all-reduce move a given
 * number of floats. Everything else is Kaon's own: generations, the ring all-reduce between
 * nodes, the divergence check and sample ledger, checkpoints, recovery. The tiny network keeps
 * the real arithmetic to microseconds, so that a hundred ranks on two cores measure Kaon and not
 * the CPU.
 *
 * <p>Not registered with the {@link java.util.ServiceLoader}, so {@code kaon tasks} does not list
 * it; a job names it by class. Sized by system properties, which every node of the cluster must
 * be given alike (the bench passes them in {@code KAON_JAVA_OPTS}):
 * <ul>
 *   <li>{@code kaon.scale-probe.parameters}: floats per all-reduce (default 65,536: 256 KiB)
 *   <li>{@code kaon.scale-probe.step-ms}: the simulated compute of a step, per rank (default 20)
 *   <li>{@code kaon.scale-probe.samples}: training examples (default 16,384; 1,024 test ones)
 * </ul>
 * The examples are 16 random features labelled with the largest of the first ten, so the loss
 * does fall: a run whose reduction went wrong shows it.
 */
public final class ScaleProbeTask implements TrainingTask {

  private static final int FEATURES = 16;
  private static final int CLASSES = 10;
  private static final int TEST_SAMPLES = 1024;

  private final int hidden;
  private final long stepMillis;
  private final int samples;

  public ScaleProbeTask() {
    int parameters = Integer.getInteger("kaon.scale-probe.parameters", 65_536);
    this.stepMillis = Long.getLong("kaon.scale-probe.step-ms", 20L);
    this.samples = Integer.getInteger("kaon.scale-probe.samples", 16_384);
    if (parameters < 100 || stepMillis < 0 || samples < 1) {
      throw new IllegalArgumentException("kaon.scale-probe.parameters must be at least 100, step-ms not negative,"
          + " samples positive; were " + parameters + ", " + stepMillis + ", " + samples);
    }
    // 16 -> hidden -> 10 with biases has 27 * hidden + 10 parameters.
    this.hidden = Math.max(1, (parameters - CLASSES) / (FEATURES + 1 + CLASSES));
  }

  @Override
  public String name() {
    return "scale-probe";
  }

  @Override
  public String description() {
    return "simulated devices for bench/scale: " + (27 * hidden + 10) + " parameters, " + stepMillis + " ms per step";
  }

  @Override
  public Block buildModel() {
    return new SequentialBlock()
        .add(new SimulatedCompute(stepMillis))
        .add(Linear.builder().setUnits(hidden).build())
        .add(Activation.reluBlock())
        .add(Linear.builder().setUnits(CLASSES).build());
  }

  @Override
  public Shape inputShape(int batchSize) {
    return new Shape(batchSize, FEATURES);
  }

  @Override
  public TaskData loadData(Path dataDir) {
    // Fixed seeds: every node must hold the same examples, as it would read the same files.
    return new TaskData(examples(samples, 1L), examples(TEST_SAMPLES, 2L));
  }

  private static LabeledImages examples(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] features = new float[count * FEATURES];
    int[] labels = new int[count];
    for (int i = 0; i < count; i++) {
      int best = 0;
      for (int f = 0; f < FEATURES; f++) {
        features[i * FEATURES + f] = (float) random.nextDouble();
        if (f < CLASSES && features[i * FEATURES + f] > features[i * FEATURES + best]) {
          best = f;
        }
      }
      labels[i] = best;
    }
    return new LabeledImages(features, labels, count, 1, FEATURES);
  }

  @Override
  public TaskDefaults defaults() {
    return new TaskDefaults(3, 256, OptimizerSpec.sgd(0.1f, 0f), 42L);
  }

  /**
   * A device's compute time: each training forward pass sleeps for it. Evaluation does not, so an
   * epoch's end costs what Kaon's evaluation costs.
   */
  static final class SimulatedCompute extends AbstractBlock {
    private final long millis;

    SimulatedCompute(long millis) {
      this.millis = millis;
    }

    @Override
    protected NDList forwardInternal(ParameterStore store, NDList inputs, boolean training,
        PairList<String, Object> params) {
      if (training && millis > 0) {
        try {
          Thread.sleep(millis);
        } catch (InterruptedException e) {
          // A stopping generation interrupts its thread; it sees the flag at the next step.
          Thread.currentThread().interrupt();
        }
      }
      return inputs;
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
      return inputShapes;
    }
  }
}
