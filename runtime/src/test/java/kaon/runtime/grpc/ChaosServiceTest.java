package kaon.runtime.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.v1.ChaosServiceClient;
import kaon.protocol.v1.ClearFaultsRequest;
import kaon.protocol.v1.InjectFaultRequest;
import kaon.protocol.v1.ListFaultsRequest;
import kaon.protocol.v1.ListFaultsResponse;
import kaon.protocol.v1.RuntimeFault;
import kaon.protocol.v1.RuntimeFaultKind;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;

/** The admin-only chaos service over a real socket: its own token, its checks, and what it arms. */
class ChaosServiceTest {

  private static final RuntimeFault DROP = RuntimeFault.newBuilder().setKind(RuntimeFaultKind.CHUNK_DROP)
      .setJobId("job-x").setRank(1).setGeneration(-1).setMaxStrikes(3).setDurationMs(60_000).build();

  @Test
  void armsListsAndClearsFaultsForItsTokenOnlyAndNamesABadField() throws Exception {
    var config = kaon.runtime.TestNodes.withOwnJournal(ConfigFactory.empty()
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef("api-token"))
        .withValue("kaon.chaos.token", ConfigValueFactory.fromAnyRef("chaos-token"))
        .withValue("kaon.chaos.runtime-faults.enabled", ConfigValueFactory.fromAnyRef(true))
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(1))
        .withFallback(ConfigFactory.load()));
    KaonNode.Running node = KaonNode.startLocal(config, TaskCatalog.load(getClass().getClassLoader()), line -> {});
    ActorSystem<Void> clients = ActorSystem.create(Behaviors.empty(), "chaos-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    ChaosServiceClient chaos = ChaosServiceClient.create(
        GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clients).withTls(false), clients);
    try {
      Status apiToken = failure(() -> chaos.injectFault().addHeader("authorization", "Bearer api-token")
          .invoke(InjectFaultRequest.newBuilder().setFault(DROP).build()));
      assertEquals(Status.Code.UNAUTHENTICATED, apiToken.getCode(), "the API's token does not open the chaos service");

      Status noDuration = failure(() -> chaos.injectFault().addHeader("authorization", "Bearer chaos-token")
          .invoke(InjectFaultRequest.newBuilder().setFault(DROP.toBuilder().setDurationMs(0)).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, noDuration.getCode());
      assertTrue(noDuration.getDescription().startsWith("fault.duration_ms"), noDuration.getDescription());
      Status noKind = failure(() -> chaos.injectFault().addHeader("authorization", "Bearer chaos-token")
          .invoke(InjectFaultRequest.newBuilder().setFault(DROP.toBuilder().clearKind()).build()));
      assertTrue(noKind.getDescription().startsWith("fault.kind"), noKind.getDescription());

      long id = chaos.injectFault().addHeader("authorization", "Bearer chaos-token")
          .invoke(InjectFaultRequest.newBuilder().setFault(DROP).build()).toCompletableFuture().get(30, TimeUnit.SECONDS).getId();
      ListFaultsResponse listed = chaos.listFaults().addHeader("authorization", "Bearer chaos-token")
          .invoke(ListFaultsRequest.getDefaultInstance()).toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertEquals(1, listed.getFaultsCount());
      assertEquals(id, listed.getFaults(0).getId());
      assertEquals(DROP.toBuilder().setProbability(1).build(), listed.getFaults(0).getFault());
      assertEquals(0, listed.getFaults(0).getStrikes());
      assertEquals(1, chaos.clearFaults().addHeader("authorization", "Bearer chaos-token")
          .invoke(ClearFaultsRequest.getDefaultInstance()).toCompletableFuture().get(30, TimeUnit.SECONDS).getCleared());
    } finally {
      chaos.close();
      clients.terminate();
      node.system().terminate();
      node.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }
  }

  private static Status failure(Supplier<CompletionStage<?>> call) {
    ExecutionException e = assertThrows(ExecutionException.class,
        () -> call.get().toCompletableFuture().get(30, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof StatusRuntimeException, e.getCause().toString());
    return ((StatusRuntimeException) e.getCause()).getStatus();
  }
}
