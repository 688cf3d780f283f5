package kaon.actors.checkpoint;

import java.util.List;
import kaon.actors.data.SampleLedger;
import kaon.protocol.NamedTensor;

/**
 * Everything needed to continue a job exactly where a checkpoint was taken.
 *
 * @param jobId the job
 * @param step optimizer steps completed; training resumes with this step
 * @param epoch 0-based epoch of the next step (the sampler cursor)
 * @param stepInEpoch step inside that epoch of the next step
 * @param seed the seed the per-epoch shuffles derive from; with the cursor it is the whole RNG state
 * @param worldSize ranks when it was taken (informational: the maths does not depend on it)
 * @param parameters the model's parameters by name
 * @param optimizerState the optimizer's named state, step count included
 * @param epochLossSum loss summed so far in the current epoch, over every rank's slices
 * @param epochCorrect correct predictions so far in the current epoch, over every rank's slices
 * @param epochLedger the samples the current epoch has used so far (its count is the examples)
 */
public record CheckpointData(
    String jobId,
    long step,
    int epoch,
    int stepInEpoch,
    long seed,
    int worldSize,
    List<NamedTensor> parameters,
    List<NamedTensor> optimizerState,
    double epochLossSum,
    long epochCorrect,
    SampleLedger epochLedger) {}
