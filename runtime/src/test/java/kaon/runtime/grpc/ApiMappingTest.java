package kaon.runtime.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.protobuf.Timestamp;
import java.util.List;
import kaon.actors.job.JobStatus;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.protocol.v1.Job;
import org.junit.jupiter.api.Test;

/** The API's view of a job's times, made from the coordinator's epoch milliseconds. */
class ApiMappingTest {

  private static final JobSpec SPEC = new JobSpec("fashion-mnist-mlp", 2, 1, 3, 3, 128, OptimizerSpec.sgd(0.1f, 0f), 7, 0, "", 10);

  private static JobStatus status(JobStatus.Phase phase, long created, long started, long ended) {
    return new JobStatus("job-1", phase, SPEC, 1, List.of(), 0, "init", null, "", Double.NaN, "", "", 2, 1, 3, List.of(), "",
        List.of(), null, created, started, ended);
  }

  @Test
  void timesBecomeTimestampsToTheMillisecond() {
    Job job = ApiMapping.job(status(JobStatus.Phase.SUCCEEDED, 1_764_000_000_123L, 1_764_000_000_123L, 1_764_000_090_456L));
    assertEquals(Timestamp.newBuilder().setSeconds(1_764_000_000L).setNanos(123_000_000).build(), job.getCreatedAt());
    assertEquals(job.getCreatedAt(), job.getStartedAt());
    assertEquals(Timestamp.newBuilder().setSeconds(1_764_000_090L).setNanos(456_000_000).build(), job.getEndedAt());
  }

  @Test
  void aTimeNotKnownOrNotYetIsLeftUnsetNotSentAs1970() {
    Job running = ApiMapping.job(status(JobStatus.Phase.RUNNING, 1_764_000_000_000L, 0, 0));
    assertFalse(running.hasStartedAt());
    assertFalse(running.hasEndedAt());
    assertFalse(ApiMapping.job(JobStatus.unknown("job-2")).hasCreatedAt());
  }
}
