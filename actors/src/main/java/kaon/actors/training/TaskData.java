package kaon.actors.training;

import kaon.actors.data.LabeledImages;

/** The examples a task trains on and the held-out examples it is evaluated on each epoch. */
public record TaskData(LabeledImages train, LabeledImages test) {}
