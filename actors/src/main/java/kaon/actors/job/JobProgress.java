package kaon.actors.job;

import kaon.protocol.KryoWireMessage;

/**
 * Where a generation is inside its epoch, as its rank 0 last said: the 1-based epoch, the steps
 * done in it, the steps of a whole epoch and the epoch's mean loss so far. Watchers get each one
 * ({@link JobUpdate.Progress}), and a job's status shows the newest ({@link JobStatus#progress}).
 */
public record JobProgress(int epoch, int step, int stepsPerEpoch, double meanLoss) implements KryoWireMessage {}
