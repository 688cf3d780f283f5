package kaon.actors.wire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.util.ArrayList;
import java.util.List;
import kaon.actors.allreduce.RingEdge;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.job.EpochMetrics;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobStatus;
import kaon.actors.job.JobUpdate;
import kaon.actors.job.OwnerReply;
import kaon.actors.training.JobSpec;
import kaon.actors.training.OptimizerSpec;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.KryoSerializer;
import kaon.protocol.RingMessage;
import kaon.protocol.TensorChunk;
import kaon.protocol.TensorChunkSerializer;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Every message kaon-actors sends between JVMs round-trips through the serializer its binding
 * picks: Kryo for control messages (so the registration list in reference.conf is complete),
 * the ByteBuffer serializer for tensor chunks. A message missing from the list would otherwise
 * only fail once a cluster spans two JVMs.
 */
class WireMessagesSerializationTest {

  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  @Test
  void everyWireMessageRoundTrips() {
    ActorRef<WorkerReport> coordinator = testKit.createTestProbe(WorkerReport.class).getRef();
    ActorRef<RingMessage> peer = testKit.createTestProbe(RingMessage.class).getRef();
    JobSpec spec = new JobSpec("fashion-mnist-cnn", 3, 10, 128,
        new OptimizerSpec(OptimizerSpec.Kind.ADAMW, 0.001f, 0f, 0.9f, 0.999f, 1e-8f, 0.01f), 42, 0, "/tmp/m.params", 200);
    List<ActorRef<RingMessage>> ring = new ArrayList<>(List.of(peer, peer, peer));
    List<Object> kryo = List.of(
        new DeviceWorker.Prepare("job-1", spec, 3, 1, 3, coordinator, "step-400-abcdef12", 400, false),
        new DeviceWorker.Prepare("job-1", spec, 4, 0, 2, coordinator, "", 1234, true),
        new DeviceWorker.AskState(4, testKit.<DeviceWorker.HeldState>createTestProbe().getRef()),
        new DeviceWorker.HeldState("job-1-worker-2", 1234, 1_310_720),
        new DeviceWorker.Reattach(3, coordinator),
        new DeviceWorker.Ack(3, 17),
        new DeviceWorker.Begin(3, ring, -1, 0),
        new DeviceWorker.Begin(3, List.of(peer), 0, 1_310_720),
        new DeviceWorker.Stop(3, "job ended", false),
        new WorkerReport.Ready(3, 1, peer, "cpu:1", true),
        new WorkerReport.Failed(3, 1, "all-reduce missed its deadline", true),
        new WorkerReport.StepProgress(3, 0, 10, 468, 0.52),
        new WorkerReport.EpochReport(3, 1, 5, 0, 1234.5, 100, 200, true, 90, 100, 123_456_789L, 468),
        new WorkerReport.Finished(3, 1, 6, "ab".repeat(32)),
        new WorkerReport.CheckpointWritten(3, 0, 7, new CheckpointInfo("step-400-abcdef12", 400, 0, 123456, "cd".repeat(32))),
        new WorkerReport.CheckpointHealth(3, 0, "checkpoint writes failing"),
        new WorkerReport.Reattached(3, 1),
        new WorkerReport.NotRunning(3, 2),
        new WorkerReport.Placed(3, 1, "pekko://kaon@10.0.0.7:25520", "cpu:1", "link", "a tensor link to 10.0.0.8:7355",
            new kaon.actors.liveness.NodeLiveness.Endpoint("pekko://kaon@10.0.0.7:25520", "10.0.0.7", 41234, -77L)),
        new JobCoordinator.Submit(spec, testKit.<OwnerReply>createTestProbe().getRef()),
        new JobCoordinator.GetStatus(testKit.<JobStatus>createTestProbe().getRef()),
        new JobCoordinator.Watch(testKit.<JobUpdate>createTestProbe().getRef()),
        new JobCoordinator.Cancel(testKit.<OwnerReply>createTestProbe().getRef()),
        new JobCoordinator.Scale(1, 3, testKit.<OwnerReply>createTestProbe().getRef()),
        new JobUpdate.Progress(new kaon.actors.job.JobProgress(2, 100, 468, 0.51)),
        new JobUpdate.EpochFinished(new EpochMetrics(1, 0.5, 0.8, 0.81, 40000, 1.5, 2, 468, 59_904, true)),
        new JobUpdate.StatusChanged(status(spec)),
        new OwnerReply.Accepted(status(spec)),
        new OwnerReply.Refused(OwnerReply.Refusal.ENDED, "job job-1 already ended: SUCCEEDED"),
        new kaon.actors.worker.NodeAgent.WarmTask("fashion-mnist-cnn"),
        new kaon.actors.joblog.JobLogServer.Read("job-1", 42, testKit.<kaon.actors.joblog.JobLogServer.Lines>createTestProbe().getRef()),
        new kaon.actors.joblog.JobLogServer.Lines("pekko://kaon@10.0.0.7:25520", List.of(
            new kaon.actors.joblog.JobLog.Line(43, 1_733_400_000_000L, "WARN", "CheckpointWriter", "job job-1: retrying"))),
        status(spec));
    for (Object message : kryo) {
      assertEquals(message, roundTrip(message, KryoSerializer.class));
    }
    TensorChunk chunk = new TensorChunk("job-1", 3, 17, 2, 0, 4096, new float[] {1f, -2f, 3.5f});
    assertEquals(chunk, roundTrip(chunk, TensorChunkSerializer.class));
  }

  @Test
  void tensorLinkSetUpMessagesRoundTrip() {
    ActorRef<RingEdge.LinkEndpoint> replyTo = testKit.createTestProbe(RingEdge.LinkEndpoint.class).getRef();
    List<Object> kryo = List.of(
        new RingEdge.LinkEndpointRequest(replyTo),
        new RingEdge.LinkEndpoint("10.0.0.7", 45555, 3, new byte[] {1, 2, 3, -128, 127}, null),
        new RingEdge.LinkEndpoint(null, 0, -1, null, "kaon.allreduce.transport is artery on pekko://kaon@10.0.0.8:25520"));
    for (Object message : kryo) {
      assertEquals(message, roundTrip(message, KryoSerializer.class));
    }
  }

  private static JobStatus status(JobSpec spec) {
    return new JobStatus("job-1", JobStatus.Phase.RUNNING, spec, 3, java.util.List.copyOf(List.of(
            new EpochMetrics(1, 0.5, 0.8, 0.81, 40000, 1.5, 2, 468, 59_904, true), new EpochMetrics(2, 0.4, 0.85, 0.83, 41000, 1.4, 2, 936, 59_904, false))),
        936, "checkpoint:step-900-abcd", new CheckpointInfo("step-900-abcd", 900, 1, 875000, "ef".repeat(32)),
        "", Double.NaN, "", "", 2, 1, 3, List.of(
            new kaon.actors.job.GenerationInfo(1, 3, 0, "job submitted", "init", List.of(0, 1, 2), 1_764_000_000_000L),
            new kaon.actors.job.GenerationInfo(2, 2, 900, "rank 2 failed: all-reduce missed its deadline",
                "memory:job-1-worker-0", List.of(0, 1), 1_764_000_060_000L),
            new kaon.actors.job.GenerationInfo(3, 3, 936, "growing from 2 to 3 ranks: devices joined",
                "memory:job-1-worker-0", List.of(0, 1, 3), 1_764_000_090_000L)), "pekko://kaon@10.0.0.7:25520",
        List.of(new kaon.actors.job.RankPlacement(0, 0, "pekko://kaon@10.0.0.7:25520", "cpu:0", "in-jvm", "plain references in this JVM"),
            new kaon.actors.job.RankPlacement(1, 1, "pekko://kaon@10.0.0.7:25520", "cpu:1", "artery",
                "Artery, since no tensor link could be set up: refused"),
            new kaon.actors.job.RankPlacement(2, 3, "pekko://kaon@10.0.0.8:25520", "cpu:0", "", "")),
        new kaon.actors.job.JobProgress(3, 120, 468, 0.41), 1_764_000_000_000L, 1_764_000_000_000L, 0);
  }

  private static Object roundTrip(Object message, Class<? extends Serializer> expected) {
    Serialization serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
    Serializer serializer = serialization.findSerializerFor(message);
    assertInstanceOf(expected, serializer, message.getClass().getName());
    byte[] bytes = serialization.serialize(message).get();
    return serialization.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, message)).get();
  }
}
