package kaon.actors.allreduce;

import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The {@link SharedReduction}s of this node: one per generation whose ranks all run here, shared
 * by those ranks. Each rank {@link #acquire}s it when its ring begins and {@link #release}s it when
 * its generation ends; the last release forgets it. A rank that comes after every other one left
 * gets a reduction of its own, in which it waits alone until its generation is stopped or its
 * deadline passes: its generation is over anyway.
 *
 * <p>Thread-safe: used by the device workers' actors.
 */
public final class LocalReductions implements Extension {

  /** The extension's id; {@link #get} is the way in. */
  public static final ExtensionId<LocalReductions> ID =
      new ExtensionId<>() {
        @Override
        public LocalReductions createExtension(ActorSystem<?> system) {
          return new LocalReductions();
        }
      };

  /** This node's shared reductions. */
  public static LocalReductions get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private record Key(String jobId, long generation) {}

  private static final class Held {
    final SharedReduction reduction;
    int users;

    Held(SharedReduction reduction) {
      this.reduction = reduction;
    }
  }

  private final Map<Key, Held> held = new HashMap<>();

  /** The reduction of {@code generation} of {@code jobId} among {@code worldSize} ranks of this node. */
  public synchronized SharedReduction acquire(String jobId, long generation, int worldSize, AllReduceSettings settings) {
    Held h = held.computeIfAbsent(new Key(jobId, generation),
        k -> new Held(new SharedReduction(jobId, generation, worldSize, settings)));
    if (h.reduction.worldSize() != worldSize) {
      throw new IllegalStateException("generation " + generation + " of job " + jobId + " has " + h.reduction.worldSize()
          + " ranks, one of them says " + worldSize);
    }
    h.users++;
    return h.reduction;
  }

  /** One rank of {@code generation} of {@code jobId} is done with its reduction. */
  public synchronized void release(String jobId, long generation) {
    Key key = new Key(jobId, generation);
    Held h = held.get(key);
    if (h != null && --h.users <= 0) {
      held.remove(key);
    }
  }

  /** How many generations share a reduction here now. */
  public synchronized int size() {
    return held.size();
  }
}
