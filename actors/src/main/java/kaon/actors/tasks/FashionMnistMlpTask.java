package kaon.actors.tasks;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import java.nio.file.Path;
import kaon.actors.data.FashionMnist;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.training.TaskData;
import kaon.actors.training.TaskDefaults;
import kaon.actors.training.TrainingTask;

/**
 * Fashion-MNIST with a 784-128-64-10 multi-layer perceptron (109,386 parameters). The defaults
 * are the recipe PyTorch reaches 87.1% test accuracy with on this hardware in 10 epochs: SGD
 * learning rate 0.1, no momentum, global batch 128, seed 42.
 */
public final class FashionMnistMlpTask implements TrainingTask {

  @Override
  public String name() {
    return "fashion-mnist-mlp";
  }

  @Override
  public String description() {
    return "Fashion-MNIST, MLP 784-128-64-10, SGD lr 0.1, batch 128";
  }

  @Override
  public Block buildModel() {
    return new SequentialBlock()
        .add(Linear.builder().setUnits(128).build())
        .add(Activation.reluBlock())
        .add(Linear.builder().setUnits(64).build())
        .add(Activation.reluBlock())
        .add(Linear.builder().setUnits(10).build());
  }

  @Override
  public Shape inputShape(int batchSize) {
    return new Shape(batchSize, 784);
  }

  @Override
  public TaskData loadData(Path dataDir) {
    FashionMnist files = FashionMnist.load(dataDir == null ? FashionMnist.DEFAULT_DIR : dataDir);
    return new TaskData(files.train(), files.test());
  }

  @Override
  public TaskDefaults defaults() {
    return new TaskDefaults(10, 128, OptimizerSpec.sgd(0.1f, 0f), 42L);
  }
}
