package kaon.actors.job;

/**
 * Where a generation's state comes from: the initial parameters, a committed checkpoint, or the
 * memory of one of the job's workers. Written into the journal and shown to owners as its text
 * ({@code init}, {@code checkpoint:<id>}, {@code memory:<worker entity id>}), which {@link #parse}
 * reads back.
 */
public sealed interface StateSource {

  /** The initial parameters of the job's seed (step 0). */
  record Init() implements StateSource {
    @Override
    public String toString() {
      return "init";
    }
  }

  /** Committed checkpoint {@code id}, read from the checkpoint store. */
  record Checkpoint(String id) implements StateSource {
    @Override
    public String toString() {
      return "checkpoint:" + id;
    }
  }

  /** The state that worker {@code worker} (its entity id) holds in memory and sends to the others. */
  record Memory(String worker) implements StateSource {
    @Override
    public String toString() {
      return "memory:" + worker;
    }
  }

  /** The initial parameters. */
  StateSource INIT = new Init();

  /**
   * The source {@code text} names; text that names none (written by a version that knew other
   * sources) reads as {@link #INIT}, so that an old journal still replays.
   */
  static StateSource parse(String text) {
    if (text.startsWith("checkpoint:")) {
      return new Checkpoint(text.substring("checkpoint:".length()));
    } else if (text.startsWith("memory:")) {
      return new Memory(text.substring("memory:".length()));
    }
    return INIT;
  }
}
