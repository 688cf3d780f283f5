package kaon.actors.tasks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class FashionMnistCnnTaskTest {

  @Test
  void theChannelsLastInputHoldsTheSameImages() {
    try (NDManager manager = NDManager.newBaseManager()) {
      // Distinct values everywhere, so that a transposed or shifted image cannot compare equal.
      NDArray images = manager.arange(3 * 28 * 28).toType(DataType.FLOAT32, false)
          .reshape(new FashionMnistCnnTask().inputShape(3));
      NDArray view = FashionMnistCnnTask.channelsLast(images);
      assertEquals(new Shape(3, 1, 28, 28), view.getShape());
      assertTrue(view.contentEquals(images));
      // Row h, column w of image n is where the NCHW layout has it.
      assertEquals(2 * 784 + 5 * 28 + 7, view.getFloat(2, 0, 5, 7));
    }
  }
}
