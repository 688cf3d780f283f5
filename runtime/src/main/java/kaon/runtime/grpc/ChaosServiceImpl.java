package kaon.runtime.grpc;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.ArmedFault;
import kaon.protocol.v1.ChaosServicePowerApi;
import kaon.protocol.v1.ClearFaultsRequest;
import kaon.protocol.v1.ClearFaultsResponse;
import kaon.protocol.v1.InjectFaultRequest;
import kaon.protocol.v1.InjectFaultResponse;
import kaon.protocol.v1.ListFaultsRequest;
import kaon.protocol.v1.ListFaultsResponse;
import kaon.protocol.v1.RuntimeFault;
import kaon.protocol.v1.RuntimeFaultKind;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.grpc.javadsl.Metadata;

/**
 * {@code kaon.v1.ChaosService}: arms, lists and clears this node's {@link RuntimeFaults}. Served
 * only where runtime faults are enabled, and only to callers with the chaos token, which is not
 * the API's: whoever may submit jobs may not thereby damage them.
 */
public final class ChaosServiceImpl implements ChaosServicePowerApi {

  /** Longest a fault may stay armed: a forgotten one must not outlive a day's soak. */
  private static final Duration LONGEST = Duration.ofHours(24);

  private final RuntimeFaults faults;
  private final BearerToken token;
  private final String node;

  public ChaosServiceImpl(ActorSystem<?> system, BearerToken token) {
    this.faults = RuntimeFaults.get(system);
    this.token = token;
    this.node = system.address().toString();
  }

  @Override
  public CompletionStage<InjectFaultResponse> injectFault(InjectFaultRequest in, Metadata metadata) {
    token.check(metadata);
    long id = faults.arm(toFault(in.getFault()));
    return CompletableFuture.completedFuture(InjectFaultResponse.newBuilder().setId(id).setNode(node).build());
  }

  @Override
  public CompletionStage<ListFaultsResponse> listFaults(ListFaultsRequest in, Metadata metadata) {
    token.check(metadata);
    ListFaultsResponse.Builder out = ListFaultsResponse.newBuilder().setNode(node);
    for (RuntimeFaults.Armed armed : faults.armed()) {
      out.addFaults(ArmedFault.newBuilder()
          .setId(armed.id())
          .setFault(toProto(armed.fault()))
          .setArmedAtMs(armed.armedAtMillis())
          .setStrikes(armed.strikes())
          .setSpent(armed.spent()));
    }
    return CompletableFuture.completedFuture(out.build());
  }

  @Override
  public CompletionStage<ClearFaultsResponse> clearFaults(ClearFaultsRequest in, Metadata metadata) {
    token.check(metadata);
    return CompletableFuture.completedFuture(ClearFaultsResponse.newBuilder().setCleared(faults.clear()).build());
  }

  /** The fault a request asks for, each field checked. */
  static RuntimeFaults.Fault toFault(RuntimeFault f) {
    if (f.getKind() == RuntimeFaultKind.RUNTIME_FAULT_KIND_UNSPECIFIED || f.getKind() == RuntimeFaultKind.UNRECOGNIZED) {
      throw SpecResolver.invalid("fault.kind", "is required (CHUNK_DROP, CHUNK_DELAY, CHUNK_CORRUPT, SLOW_RANK, POISON_NAN, "
          + "POISON_LARGE or CHECKPOINT_WRITE)");
    }
    RuntimeFaults.Kind kind = RuntimeFaults.Kind.valueOf(f.getKind().name());
    if (f.getRank() < -1) {
      throw SpecResolver.invalid("fault.rank", "must be a rank (>= 0) or -1 for every rank, was " + f.getRank());
    }
    if (f.getGeneration() < -1) {
      throw SpecResolver.invalid("fault.generation", "must be a generation (>= 0) or -1 for any, was " + f.getGeneration());
    }
    double probability = f.getProbability() == 0 ? 1 : f.getProbability();
    if (!(probability > 0 && probability <= 1)) {
      throw SpecResolver.invalid("fault.probability", "must be in (0, 1], was " + f.getProbability());
    }
    boolean delayed = kind == RuntimeFaults.Kind.CHUNK_DELAY || kind == RuntimeFaults.Kind.SLOW_RANK;
    if (delayed ? f.getDelayMs() <= 0 : f.getDelayMs() != 0) {
      throw SpecResolver.invalid("fault.delay_ms", delayed ? "must be > 0 for " + f.getKind()
          : "applies only to CHUNK_DELAY and SLOW_RANK, not " + f.getKind());
    }
    if (f.getMaxStrikes() < 0) {
      throw SpecResolver.invalid("fault.max_strikes", "must be >= 0 (0: no limit), was " + f.getMaxStrikes());
    }
    if (f.getDurationMs() <= 0 || f.getDurationMs() > LONGEST.toMillis()) {
      throw SpecResolver.invalid("fault.duration_ms", "must be in (0, " + LONGEST.toMillis() + "], was " + f.getDurationMs());
    }
    return new RuntimeFaults.Fault(kind, f.getJobId(), f.getRank(), f.getGeneration(), probability,
        Duration.ofMillis(f.getDelayMs()), f.getMaxStrikes(), Duration.ofMillis(f.getDurationMs()), f.getSeed());
  }

  static RuntimeFault toProto(RuntimeFaults.Fault f) {
    return RuntimeFault.newBuilder()
        .setKind(RuntimeFaultKind.valueOf(f.kind().name()))
        .setJobId(f.jobId())
        .setRank(f.rank())
        .setGeneration(f.generation())
        .setProbability(f.probability())
        .setDelayMs(f.delay().toMillis())
        .setMaxStrikes(f.maxStrikes())
        .setDurationMs(f.duration().toMillis())
        .setSeed(f.seed())
        .build();
  }
}
