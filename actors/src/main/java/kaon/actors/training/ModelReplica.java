package kaon.actors.training;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import kaon.actors.data.LabeledImages;
import kaon.protocol.NamedTensor;

/**
 * One worker's copy of the model, pinned to its device: forward/backward on a slice of a batch,
 * its gradients as one flat buffer, and the update from the all-reduced sum.
 *
 * <p>The flat buffer lays parameters out in the block's parameter order, which follows the block
 * structure and is therefore the same in every JVM (DJL's parameter ids are random per JVM and
 * never used). Not thread-safe: a replica belongs to its worker's training thread, which must have
 * run {@link LocalGradientCollector#prepareThread} first.
 */
public final class ModelReplica implements AutoCloseable {

  private final TrainingTask task;
  private final NDManager manager;
  private final Block block;
  private final ParameterStore parameterStore;
  private final Loss loss = Loss.softmaxCrossEntropyLoss();
  private final List<Slot> slots = new ArrayList<>();
  private final int size;
  /**
   * The batch's pixels, and below the summed gradient as the optimizer takes it: direct buffers
   * of this replica, reused every step. DJL copies an array-backed buffer into a new direct one
   * for every tensor it creates, and such a buffer is freed only when a GC finds it: about 0.8 MB
   * per MLP step, which grew the node's native memory by hundreds of megabytes between GCs.
   * Tensors made from these live only within a step.
   */
  private ByteBuffer batchPixels = ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder());
  private ByteBuffer gradient = ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder());
  /** On the CPU, every parameter and gradient in one tensor each; null on other devices. */
  private final FlatParameters flat;

  /** A parameter and where it sits in the flat buffer. */
  private record Slot(String name, Parameter parameter, int offset, int length) {}

  /**
   * Builds and initializes the task's model on {@code device}. Every replica built with the same
   * seed starts with identical parameters, on any JVM, without exchanging anything.
   */
  public ModelReplica(TrainingTask task, Device device, long seed) {
    this.task = task;
    this.manager = NDManager.newBaseManager(device, "PyTorch");
    this.block = task.buildModel();
    block.initialize(manager, DataType.FLOAT32, task.inputShape(1));
    this.parameterStore = new ParameterStore(manager, false);
    int offset = 0;
    for (Pair<String, Parameter> p : block.getParameters()) {
      Parameter parameter = p.getValue();
      if (!parameter.requiresGradient()) {
        continue;
      }
      int length = Math.toIntExact(parameter.getArray().size());
      slots.add(new Slot(p.getKey(), parameter, offset, length));
      offset += length;
    }
    this.size = offset;
    initialize(seed);
    List<Optimizer.Segment> layout = slots.stream()
        .map(s -> new Optimizer.Segment(s.name, s.offset, s.length, s.parameter.getArray().getShape().getShape()))
        .toList();
    this.flat = device.isGpu() ? null
        : new FlatParameters(manager, slots.stream().map(Slot::parameter).toList(), layout, size);
  }

  /** Number of floats in the flat gradient buffer. */
  public int size() {
    return size;
  }

  /** The parameter names in flat-buffer order. */
  public List<String> parameterNames() {
    return slots.stream().map(Slot::name).toList();
  }

  /** Loss summed over a slice and how many of its examples were classified right. */
  public record StepResult(double lossSum, int correct, int examples) {}

  /**
   * Runs forward and backward on the examples {@code indices} of {@code data} and writes the
   * gradient of the summed loss into {@code flatGradient}. Summing, not averaging, per rank lets
   * the all-reduce produce the global batch's sum whatever the world size; the caller divides by
   * the global batch once.
   */
  public StepResult computeGradients(LabeledImages data, int[] indices, float[] flatGradient) {
    if (flatGradient.length < size) {
      throw new IllegalArgumentException("gradient buffer has " + flatGradient.length + " floats, model " + size);
    }
    int n = indices.length;
    try (NDManager step = manager.newSubManager()) {
      NDArray x = gather(step, data, indices);
      NDArray labels = step.create(labelsOf(data, indices));
      double lossSum;
      int correct;
      if (flat != null) {
        flat.beforeBackward();
      }
      try (LocalGradientCollector collector = new LocalGradientCollector()) {
        NDArray logits = InitializedForward.forward(block, parameterStore, new NDList(x), true).singletonOrThrow();
        // DJL's loss is the batch mean; its gradient is scaled to the sum's by seeding backward
        // with n, never by mean.mul(n) in the graph (see LocalGradientCollector#backward).
        NDArray mean = loss.evaluate(new NDList(labels), new NDList(logits));
        collector.backward(mean, n);
        lossSum = mean.getFloat() * n;
        correct = countCorrect(logits, labels);
      }
      if (flat != null) {
        flat.readGradients(flatGradient);
        return new StepResult(lossSum, correct, n);
      }
      for (Slot s : slots) {
        NDArray weight = s.parameter.getArray();
        try (NDArray g = weight.getGradient()) {
          // A view of the tensor's memory (no copy, nothing to free), read before it is closed.
          g.toByteBuffer(true).asFloatBuffer().get(flatGradient, s.offset, s.length);
        }
        JniUtils.zeroGrad((PtNDArray) weight);
      }
      return new StepResult(lossSum, correct, n);
    }
  }

  /**
   * Applies the optimizer with {@code flatSum * scale} as the gradient; {@code flatSum} is
   * scaled in place.
   */
  public void applyGradients(float[] flatSum, float scale, Optimizer optimizer) {
    // Floats past the parameters belong to the caller (see TrainingRun's step sums).
    for (int i = 0; i < size; i++) {
      flatSum[i] *= scale;
    }
    if (flat != null) {
      flat.update(flatSum, optimizer);
      optimizer.endStep();
      return;
    }
    gradient = atLeast(gradient, size);
    gradient.asFloatBuffer().put(flatSum, 0, size);
    try (NDManager step = manager.newSubManager()) {
      for (Slot s : slots) {
        NDArray weight = s.parameter.getArray();
        NDArray g = step.create(TensorValues.floats(gradient, s.offset, s.length), weight.getShape(), DataType.FLOAT32);
        optimizer.update(s.name, weight, g);
      }
    }
    optimizer.endStep();
  }

  /** How many of the examples {@code [from, to)} of {@code data} the model classifies right. */
  public int countCorrect(LabeledImages data, int from, int to, int batchSize) {
    int correct = 0;
    for (int start = from; start < to; start += batchSize) {
      int end = Math.min(to, start + batchSize);
      int[] indices = new int[end - start];
      long[] labelValues = new long[indices.length];
      for (int i = 0; i < indices.length; i++) {
        indices[i] = start + i;
        labelValues[i] = data.labels()[start + i];
      }
      try (NDManager step = manager.newSubManager()) {
        NDArray logits =
            block.forward(parameterStore, new NDList(gather(step, data, indices)), false).singletonOrThrow();
        correct += countCorrect(logits, step.create(labelValues));
      }
    }
    return correct;
  }

  /** The parameters, in flat-buffer order. */
  public List<NamedTensor> exportParameters() {
    List<NamedTensor> out = new ArrayList<>(slots.size());
    for (Slot s : slots) {
      NDArray w = s.parameter.getArray();
      out.add(new NamedTensor(s.name, w.getShape().getShape(), TensorValues.copy(w)));
    }
    return out;
  }

  /** Overwrites the parameters by name; every parameter must be present with its shape. */
  public void importParameters(List<NamedTensor> tensors) {
    Map<String, NamedTensor> byName = new HashMap<>();
    tensors.forEach(t -> byName.put(t.name(), t));
    for (Slot s : slots) {
      NamedTensor t = byName.get(s.name);
      if (t == null) {
        throw new IllegalArgumentException("parameter " + s.name + " is missing");
      }
      overwrite(s.parameter.getArray(), t.values(), t.shape());
    }
  }

  /**
   * SHA-256 (hex) of {@link #parametersFile}: equal digests mean identical replicas, and a job's
   * digest is the sha256 of the model file it delivers, so that anyone can check a copy with
   * {@code sha256sum}.
   */
  public String digest() {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      // Hashed as it is written: no copy of the file in memory.
      try (DataOutputStream out = new DataOutputStream(new DigestOutputStream(OutputStream.nullOutputStream(), sha))) {
        block.saveParameters(out);
      }
      return HexFormat.of().formatHex(sha.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every JVM", e);
    } catch (IOException e) {
      throw new UncheckedIOException("hashing cannot fail", e);
    }
  }

  /** The parameters in DJL's {@code .params} format, loadable with {@code Block.loadParameters}. */
  public byte[] parametersFile() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      block.saveParameters(out);
    } catch (IOException e) {
      throw new UncheckedIOException("writing to memory cannot fail", e);
    }
    return bytes.toByteArray();
  }

  /** Reads parameters written by {@link #parametersFile} (or DJL) into this replica. */
  public void loadParameters(Path file) throws IOException {
    try (java.io.DataInputStream in =
        new java.io.DataInputStream(new java.io.BufferedInputStream(Files.newInputStream(file)))) {
      block.loadParameters(manager, in);
    } catch (ai.djl.MalformedModelException e) {
      throw new IOException(file + " does not hold parameters of this model: " + e.getMessage(), e);
    }
    // Loading gave every parameter a tensor of its own again.
    if (flat != null) {
      flat.share();
    }
  }

  /** The task this replica trains. */
  public TrainingTask task() {
    return task;
  }

  /** Manager that owns the parameters; optimizer state belongs here too. */
  public NDManager manager() {
    return manager;
  }

  @Override
  public void close() {
    manager.close();
  }

  private NDArray gather(NDManager step, LabeledImages data, int[] indices) {
    int features = data.featureSize();
    int needed = indices.length * features;
    Shape shape = task.inputShape(indices.length);
    if (data.storedAsIntensities()) {
      // The bytes cross into libtorch, which widens and divides them vectorized: converting in
      // Java took 2.5x as long as copying floats. libtorch divides a float tensor by a float
      // scalar exactly (no multiplication by a reciprocal), so each pixel is the float that
      // b / 255f gives in Java, and training stays bit-identical to floats held in memory.
      batchPixels = atLeastBytes(batchPixels, needed);
      copyIntensities(data, indices, batchPixels.duplicate().clear());
      NDArray bytes = step.create(TensorValues.slice(batchPixels, 0, needed), shape, DataType.UINT8);
      return bytes.toType(DataType.FLOAT32, false).divi(255f);
    }
    batchPixels = atLeast(batchPixels, needed);
    copySamples(data, indices, batchPixels.asFloatBuffer());
    return step.create(TensorValues.floats(batchPixels, 0, needed), shape, DataType.FLOAT32);
  }

  // The loops over a batch's examples live in methods of their own, here and in labelsOf: a loop
  // in computeGradients or gather made the JIT compile that whole method (everything it inlines,
  // DJL's forward included) twice in the first epoch, once to enter the running loop and once
  // for the next call, on a core the training threads needed (about 0.16 s of compiling).

  private static long[] labelsOf(LabeledImages data, int[] indices) {
    long[] labels = new long[indices.length];
    for (int i = 0; i < indices.length; i++) {
      labels[i] = data.labels()[indices[i]];
    }
    return labels;
  }

  private static void copyIntensities(LabeledImages data, int[] indices, ByteBuffer into) {
    for (int index : indices) {
      data.copyIntensities(index, into);
    }
  }

  private static void copySamples(LabeledImages data, int[] indices, FloatBuffer into) {
    for (int index : indices) {
      data.copySample(index, into);
    }
  }

  /** {@code buffer}, or a larger direct one when it holds fewer than {@code floats} floats. */
  private static ByteBuffer atLeast(ByteBuffer buffer, int floats) {
    return atLeastBytes(buffer, (long) floats * Float.BYTES);
  }

  /** {@code buffer}, or a larger direct one when it holds fewer than {@code bytes} bytes. */
  private static ByteBuffer atLeastBytes(ByteBuffer buffer, long bytes) {
    return buffer.capacity() >= bytes ? buffer
        : ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
  }

  private static int countCorrect(NDArray logits, NDArray labels) {
    try (NDArray predicted = logits.argMax(1);
        NDArray hits = predicted.eq(labels);
        NDArray count = hits.countNonzero()) {
      return (int) count.getLong();
    }
  }

  /**
   * PyTorch's default initialization for linear and convolution layers, from our own seeded
   * generator: weights and biases uniform in ±1/sqrt(fan_in), where fan_in is the layer's inputs
   * per output. Each parameter draws from a generator seeded by (seed, name), so the result does
   * not depend on the engine's global RNG, the JVM, or the order replicas are built in. Other
   * parameter types keep DJL's constant initializers (ones/zeros), which are deterministic too.
   */
  private void initialize(long seed) {
    Map<String, Long> fanInByLayer = new HashMap<>();
    for (Slot s : slots) {
      if (s.parameter.getType() == Parameter.Type.WEIGHT) {
        long[] shape = s.parameter.getArray().getShape().getShape();
        long fanIn = 1;
        for (int d = 1; d < shape.length; d++) {
          fanIn *= shape[d];
        }
        fanInByLayer.put(layerOf(s.name), fanIn);
      }
    }
    for (Slot s : slots) {
      Parameter.Type type = s.parameter.getType();
      if (type != Parameter.Type.WEIGHT && type != Parameter.Type.BIAS) {
        continue;
      }
      Long fanIn = fanInByLayer.get(layerOf(s.name));
      if (fanIn == null || fanIn == 0) {
        throw new IllegalStateException("cannot initialize " + s.name + ": no weight found for its layer");
      }
      double bound = 1.0 / Math.sqrt(fanIn);
      SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + s.name.hashCode());
      float[] values = new float[s.length];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (random.nextDouble() * 2 * bound - bound);
      }
      NDArray array = s.parameter.getArray();
      overwrite(array, values, array.getShape().getShape());
    }
  }

  private static String layerOf(String parameterName) {
    int cut = parameterName.lastIndexOf('_');
    return cut < 0 ? parameterName : parameterName.substring(0, cut);
  }

  /**
   * Copies values into a long-lived parameter array in place. Never {@code set(float[])} on an
   * array: DJL's PyTorch engine then aliases a direct buffer owned by the Java wrapper instead of
   * copying (see {@code notes/dependencies.md}).
   */
  private void overwrite(NDArray target, float[] values, long[] shape) {
    if (!target.getShape().equals(new Shape(shape))) {
      throw new IllegalArgumentException(
          "shape " + new Shape(shape) + " does not match the model's " + target.getShape());
    }
    boolean gradMode = JniUtils.isGradMode();
    JniUtils.setGradMode(false);
    try (NDManager tmp = manager.newSubManager();
        NDArray source = tmp.create(values, target.getShape())) {
      // An indexed assignment copies (and, unlike w*0+x, also clears a NaN already in w).
      target.set(new NDIndex("..."), source);
    } finally {
      JniUtils.setGradMode(gradMode);
    }
  }
}
