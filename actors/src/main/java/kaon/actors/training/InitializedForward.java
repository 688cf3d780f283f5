package kaon.actors.training;

import ai.djl.ndarray.NDList;
import ai.djl.nn.AbstractBaseBlock;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Method;

/**
 * A replica's forward pass without DJL's check that its model is initialized.
 *
 * <p>DJL's {@code AbstractBaseBlock.forward} asks {@code isInitialized()} before every training
 * forward, and that builds the block's whole parameter list, child by child, names concatenated.
 * A replica initializes its block once, when it is built, so the check always passes; but HotSpot's
 * C2 compiles that recursive list building in the first epoch: 0.20-0.26 s of a core in JFR's
 * compilation events of 2-worker MLP runs, the largest single compile while both cores train and
 * the two ranks wait for each other at every step. So the replica calls the block's own {@code
 * forwardInternal}, which is what {@code forward} calls once the check has passed. Each child block
 * still checks itself (a leaf's list is its own two or so parameters).
 *
 * <p>{@code forwardInternal} is protected: it is reached by reflection, which works while DJL's
 * jars are on the class path. A block that does not extend {@code AbstractBaseBlock}, or a DJL
 * without that method, takes the ordinary {@code forward}.
 */
final class InitializedForward {

  private static final MethodHandle FORWARD_INTERNAL = find();

  private InitializedForward() {}

  /** Whether the check is skipped: DJL has the method and it is accessible. */
  static boolean available() {
    return FORWARD_INTERNAL != null;
  }

  /** {@code block.forward(store, inputs, training)} for a block that is initialized. */
  static NDList forward(Block block, ParameterStore store, NDList inputs, boolean training) {
    if (FORWARD_INTERNAL == null || !(block instanceof AbstractBaseBlock base)) {
      return block.forward(store, inputs, training);
    }
    try {
      return (NDList) FORWARD_INTERNAL.invokeExact(base, store, inputs, training, (PairList<String, Object>) null);
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable e) {
      throw new IllegalStateException("forwardInternal declares no checked exception", e);
    }
  }

  private static MethodHandle find() {
    try {
      Method m = AbstractBaseBlock.class.getDeclaredMethod("forwardInternal", ParameterStore.class, NDList.class,
          boolean.class, PairList.class);
      m.setAccessible(true);
      return MethodHandles.lookup().unreflect(m);
    } catch (ReflectiveOperationException | RuntimeException e) {
      // A DJL that renamed it, or a module that does not open it: the ordinary forward, as before.
      return null;
    }
  }
}
