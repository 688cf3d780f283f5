package kaon.actors.worker;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import kaon.actors.allreduce.AllReduceSettings;

/**
 * How this node's workers run; read once from {@code kaon.worker} and {@code kaon.allreduce}.
 *
 * @param allReduce ring all-reduce chunking and deadlines
 * @param progressInterval how often rank 0 reports progress inside an epoch
 * @param evalBatch examples per forward pass when evaluating
 * @param dataDir where tasks read their data from on this node; null for each task's default
 * @param gradientSpikeFactor a summed gradient peaking above this many times its recent typical
 *     peak ends the generation as diverged; 0 turns the check off
 * @param modelDir the directory a job's {@code model_output} name is resolved under on this node
 *     ({@link ModelFile})
 * @param deviceAskTimeout how long a worker waits for its node agent to grant a device
 * @param holdDevice how long a worker keeps its device and state between generations
 * @param reportResendInterval how often a worker sends unacknowledged reports again
 * @param warmSpareDevices whether a node with a free device readies itself for the tasks the
 *     cluster's jobs train ({@link TaskWarmup})
 * @param trainingNice how many nice levels below the node's own its training threads run, 0-19
 *     ({@link TrainingPriority}); 0 leaves them at the node's
 */
public record WorkerSettings(
    AllReduceSettings allReduce,
    Duration progressInterval,
    int evalBatch,
    Path dataDir,
    double gradientSpikeFactor,
    Path modelDir,
    Duration deviceAskTimeout,
    Duration holdDevice,
    Duration reportResendInterval,
    boolean warmSpareDevices,
    int trainingNice) {

  public WorkerSettings {
    Objects.requireNonNull(allReduce, "allReduce");
    Objects.requireNonNull(progressInterval, "progressInterval");
    Objects.requireNonNull(modelDir, "modelDir");
    Objects.requireNonNull(deviceAskTimeout, "deviceAskTimeout");
    Objects.requireNonNull(holdDevice, "holdDevice");
    Objects.requireNonNull(reportResendInterval, "reportResendInterval");
    if (evalBatch <= 0) {
      throw new IllegalArgumentException("evalBatch must be positive, was " + evalBatch);
    }
    if (!(gradientSpikeFactor == 0 || gradientSpikeFactor > 1)) {
      throw new IllegalArgumentException(
          "kaon.worker.gradient-spike-factor must be 0 (off) or above 1, was " + gradientSpikeFactor);
    }
    if (trainingNice < 0 || trainingNice > 19) {
      throw new IllegalArgumentException("kaon.worker.training-nice must be 0-19, was " + trainingNice);
    }
  }
}
