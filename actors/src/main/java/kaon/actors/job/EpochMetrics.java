package kaon.actors.job;

/**
 * One finished epoch, summed over every rank.
 *
 * @param epoch 1-based, as printed
 * @param meanLoss training loss per example
 * @param trainAccuracy fraction of training examples classified right during the epoch
 * @param testAccuracy fraction of the held-out test split classified right after the epoch
 * @param samplesPerSecond training examples per second of the slowest rank's training time
 *     (evaluation excluded)
 * @param trainSeconds that training time
 * @param worldSize ranks that trained the epoch
 * @param stepsDone optimizer steps completed at the end of the epoch
 * @param samples training samples the epoch used
 * @param eachSampleOnce whether the epoch's sample ledger showed every planned sample used exactly
 *     once (false also when it could not be verified, see {@code SampleLedger#verifiable})
 */
public record EpochMetrics(
    int epoch,
    double meanLoss,
    double trainAccuracy,
    double testAccuracy,
    double samplesPerSecond,
    double trainSeconds,
    int worldSize,
    long stepsDone,
    long samples,
    boolean eachSampleOnce) {}
