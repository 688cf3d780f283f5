package kaon.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class TensorChunkTest {

  @Test
  void comparesDataByContent() {
    TensorChunk a = new TensorChunk("job", 1, 2, 3, 4, 5, new float[] {1f, Float.NaN});
    TensorChunk b = new TensorChunk("job", 1, 2, 3, 4, 5, new float[] {1f, Float.NaN});
    TensorChunk c = new TensorChunk("job", 1, 2, 3, 4, 5, new float[] {1f, 2f});

    assertEquals(a, b);
    assertEquals(a.hashCode(), b.hashCode());
    assertNotEquals(a, c);
  }

  @Test
  void printsOnlyDataLength() {
    TensorChunk chunk = new TensorChunk("job", 1, 2, 3, 4, 5, new float[] {1f, 2f, 3f});

    assertEquals(
        "TensorChunk[jobId=job, generation=1, step=2, round=3, chunk=4, offset=5, data=float[3]]",
        chunk.toString());
  }

  @Test
  void rejectsNegativeNumbersAndNulls() {
    float[] data = new float[1];
    assertThrows(IllegalArgumentException.class, () -> new TensorChunk("j", -1, 0, 0, 0, 0, data));
    assertThrows(IllegalArgumentException.class, () -> new TensorChunk("j", 0, -1, 0, 0, 0, data));
    assertThrows(IllegalArgumentException.class, () -> new TensorChunk("j", 0, 0, -1, 0, 0, data));
    assertThrows(IllegalArgumentException.class, () -> new TensorChunk("j", 0, 0, 0, -1, 0, data));
    assertThrows(IllegalArgumentException.class, () -> new TensorChunk("j", 0, 0, 0, 0, -1, data));
    assertThrows(NullPointerException.class, () -> new TensorChunk(null, 0, 0, 0, 0, 0, data));
    assertThrows(NullPointerException.class, () -> new TensorChunk("j", 0, 0, 0, 0, 0, null));
  }
}
