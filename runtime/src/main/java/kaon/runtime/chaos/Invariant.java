package kaon.runtime.chaos;

/** What a chaos run must show, checked by {@link HistoryChecker} on the run's history. */
public enum Invariant {
  OUTCOME("every job ended as the scenario expects: succeeded, or failed for the expected reason"),
  EACH_SAMPLE_ONCE("every epoch was reported once and used each of its samples exactly once"),
  STEP_LINEAGE("no step skipped: each generation resumed where its state came from, the journal is whole"),
  FENCING("no device had two ranks at once, no journal two writers in turn, the nodes form one cluster"),
  CHECKPOINT_INTEGRITY("every checkpoint a generation loaded hashed to its recorded SHA-256; every loss was finite; "
      + "every damaged chunk and poisoned gradient was caught before it reached the parameters"),
  ACCURACY("accuracy within the tolerance of a fault-free run; the same model where the world size never changed"),
  RECOVERY("training resumed after every fault, and no job went without progress, re-formation or health");

  private final String meaning;

  Invariant(String meaning) {
    this.meaning = meaning;
  }

  /** The invariant in words, for the report. */
  public String meaning() {
    return meaning;
  }
}
