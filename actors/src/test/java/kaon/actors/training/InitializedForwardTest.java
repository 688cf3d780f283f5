package kaon.actors.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import kaon.actors.tasks.FashionMnistCnnTask;
import kaon.actors.tasks.FashionMnistMlpTask;
import org.junit.jupiter.api.Test;

class InitializedForwardTest {

  @Test
  void itReachesDjlsForwardPastTheCheck() {
    // A DJL that renamed forwardInternal would make every step pay the check again, silently.
    assertTrue(InitializedForward.available());
  }

  @Test
  void itComputesWhatForwardComputes() {
    for (TrainingTask task : new TrainingTask[] {new FashionMnistMlpTask(), new FashionMnistCnnTask()}) {
      try (NDManager manager = NDManager.newBaseManager()) {
        Block block = task.buildModel();
        block.initialize(manager, DataType.FLOAT32, task.inputShape(1));
        ParameterStore store = new ParameterStore(manager, false);
        NDArray x = manager.randomUniform(0f, 1f, task.inputShape(5));
        NDArray expected = block.forward(store, new NDList(x), true).singletonOrThrow();
        NDArray actual = InitializedForward.forward(block, store, new NDList(x), true).singletonOrThrow();
        assertEquals(new Shape(5, 10), actual.getShape());
        assertTrue(expected.contentEquals(actual), task.name());
      }
    }
  }
}
