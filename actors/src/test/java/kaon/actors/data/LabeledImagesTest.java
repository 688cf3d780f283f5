package kaon.actors.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.BufferOverflowException;
import java.nio.FloatBuffer;
import org.junit.jupiter.api.Test;

class LabeledImagesTest {

  @Test
  void everyStoredByteBecomesTheFloatThatDividingItBy255Gives() {
    byte[] all = new byte[256];
    float[] divided = new float[256];
    for (int b = 0; b < 256; b++) {
      all[b] = (byte) b;
      divided[b] = b / 255f;
    }
    LabeledImages bytes = LabeledImages.ofIntensities(all, new int[] {3, 4}, 2, 8, 16);
    LabeledImages floats = new LabeledImages(divided, new int[] {3, 4}, 2, 8, 16);
    for (int i = 0; i < 256; i++) {
      // Bit for bit: the two forms must train identically.
      assertEquals(Float.floatToRawIntBits(divided[i]), Float.floatToRawIntBits(bytes.pixel(i)), "byte " + i);
    }
    assertEquals(0f, bytes.pixel(0));
    assertEquals(1f, bytes.pixel(255));
    assertArrayEquals(copied(floats, 1, 0), copied(bytes, 1, 0));
    assertArrayEquals(copied(floats, 0, 1), copied(bytes, 0, 1));
  }

  @Test
  void aSampleIsAppendedAtTheBuffersPositionAndMovesIt() {
    byte[] pixels = {10, 20, 30, (byte) 200, (byte) 250, (byte) 255};
    LabeledImages images = LabeledImages.ofIntensities(pixels, new int[] {0, 1, 2}, 3, 1, 2);
    FloatBuffer into = FloatBuffer.allocate(5);
    into.put(-1f);
    images.copySample(2, into);
    images.copySample(0, into);
    assertEquals(5, into.position());
    assertArrayEquals(new float[] {-1f, 250 / 255f, 255 / 255f, 10 / 255f, 20 / 255f}, into.array());
  }

  @Test
  void aBufferWithoutRoomForTheWholeSampleIsLeftAsItWas() {
    LabeledImages images = LabeledImages.ofIntensities(new byte[4], new int[] {0, 1}, 2, 1, 2);
    FloatBuffer into = FloatBuffer.allocate(3);
    into.put(7f).put(7f);
    assertThrows(BufferOverflowException.class, () -> images.copySample(1, into));
    assertEquals(2, into.position());
    assertEquals(0f, into.get(2));
  }

  @Test
  void arraysThatDisagreeWithTheShapeAreRefusedInBothForms() {
    IllegalArgumentException bytes = assertThrows(IllegalArgumentException.class,
        () -> LabeledImages.ofIntensities(new byte[5], new int[] {0, 1}, 2, 1, 2));
    assertTrue(bytes.getMessage().contains("pixels has 5 entries but count * rows * cols is 4"), bytes.getMessage());
    IllegalArgumentException floats = assertThrows(IllegalArgumentException.class,
        () -> new LabeledImages(new float[4], new int[] {0}, 2, 1, 2));
    assertTrue(floats.getMessage().contains("labels has 1 entries but count is 2"), floats.getMessage());
    assertThrows(IllegalArgumentException.class, () -> LabeledImages.ofIntensities(null, new int[0], 0, 1, 1));
  }

  private static float[] copied(LabeledImages images, int... samples) {
    FloatBuffer into = FloatBuffer.allocate(samples.length * images.featureSize());
    for (int sample : samples) {
      images.copySample(sample, into);
    }
    return into.array();
  }
}
