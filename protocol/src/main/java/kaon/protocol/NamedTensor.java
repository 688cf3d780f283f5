package kaon.protocol;

import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor with a stable name, as it leaves a model replica: a parameter ("01Linear_weight") or a
 * piece of optimizer state ("01Linear_weight/momentum").
 *
 * <p>Names, not DJL's parameter ids, identify tensors across JVMs: the ids are random per JVM,
 * while the names follow the block structure and are the same everywhere.
 */
public record NamedTensor(String name, long[] shape, float[] values) {

  public NamedTensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(values, "values");
    long size = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("tensor " + name + " has a negative dimension");
      }
      size *= d;
    }
    if (size != values.length) {
      throw new IllegalArgumentException(
          "tensor " + name + " has shape " + Arrays.toString(shape) + " but " + values.length + " values");
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NamedTensor t
        && name.equals(t.name)
        && Arrays.equals(shape, t.shape)
        && Arrays.equals(values, t.values);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * name.hashCode() + Arrays.hashCode(shape)) + Arrays.hashCode(values);
  }

  @Override
  public String toString() {
    return "NamedTensor[" + name + " " + Arrays.toString(shape) + "]";
  }
}
