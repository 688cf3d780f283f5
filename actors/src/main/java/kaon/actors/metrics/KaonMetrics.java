package kaon.actors.metrics;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.datapoints.GaugeDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * This node's metrics, in a Prometheus registry of its own (one per actor system: tests run
 * several nodes in one JVM), served by the node on its management port ({@code /metrics}).
 *
 * <p>What a step costs is measured on the training threads; the rest where it happens: the
 * checkpoint store, the all-reduce peer, a job's coordinator, the node agent. Labels stay bounded:
 * a job id, never a step; a job's series are dropped once {@link #JOBS_KEPT} newer jobs came. The
 * job's label is {@code job_id}: {@code job} is Prometheus' own, the scrape job's name, and a
 * scraped {@code job} would be renamed {@code exported_job}.
 * Instruments are resolved once per job ({@link Steps}), so that a step only adds to numbers.
 */
public final class KaonMetrics implements Extension {

  /** Jobs whose per-job series this node keeps; older ones are removed. */
  static final int JOBS_KEPT = 20;

  private static final ExtensionId<KaonMetrics> ID = new ExtensionId<>() {
    @Override
    public KaonMetrics createExtension(ActorSystem<?> system) {
      return new KaonMetrics(system);
    }
  };

  /** The metrics of {@code system}'s node. */
  public static KaonMetrics get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private final PrometheusRegistry registry = new PrometheusRegistry();
  /** Whether ranks measure their steps ({@code kaon.metrics.steps}); read once. */
  private final boolean stepsMeasured;

  private final Histogram stepPhase;
  private final Counter samples;
  private final Counter allReduceBytes;
  private final Gauge busBandwidth;
  private final Counter staleChunks;
  private final Histogram checkpointSeconds;
  private final Counter checkpointBytes;
  private final Counter checkpointFailures;
  private final Counter generations;
  private final Histogram resumeSeconds;
  private final Gauge samplesPerSecond;
  private final Gauge cassandraUp;
  private final Gauge jobHealth;
  private final Counter grpcRequests;
  private final Histogram grpcSeconds;
  private final AtomicInteger devicesFree = new AtomicInteger();
  private final AtomicInteger devicesOwned = new AtomicInteger();
  /** The phase of each job coordinated on this node. */
  private final Map<String, String> jobPhases = new ConcurrentHashMap<>();
  /** Jobs with per-job series here, oldest first. */
  private final LinkedHashMap<String, Boolean> jobs = new LinkedHashMap<>();

  private KaonMetrics(ActorSystem<?> system) {
    stepsMeasured = system.settings().config().getBoolean("kaon.metrics.steps");
    stepPhase = Histogram.builder().name("kaon_step_phase_seconds")
        .help("Time of each part of a training step on this node's ranks: compute (forward, backward, copying the"
            + " gradients out), allreduce (the exchange with the other ranks), optimizer")
        .unit(Unit.SECONDS).labelNames("job_id", "phase").classicOnly()
        .classicUpperBounds(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
        .withoutExemplars().register(registry);
    samples = Counter.builder().name("kaon_samples_total")
        .help("Training samples this node's ranks computed gradients for (sum over the job's ranks: the job's)")
        .labelNames("job_id").withoutExemplars().register(registry);
    allReduceBytes = Counter.builder().name("kaon_allreduce_bytes")
        .help("Bytes each rank of this node all-reduced (its buffer, once per step), by transport")
        .unit(Unit.BYTES).labelNames("job_id", "transport").withoutExemplars().register(registry);
    busBandwidth = Gauge.builder().name("kaon_allreduce_bus_bandwidth_bytes_per_second")
        .help("Bus bandwidth of this node's ranks' all-reduce over their last epoch: bytes x 2(n-1)/n per second"
            + " of exchange, comparable across world sizes (NCCL's busbw)")
        .labelNames("job_id", "transport").register(registry);
    staleChunks = Counter.builder().name("kaon_allreduce_stale_chunks_dropped_total")
        .help("All-reduce chunks dropped because they belonged to another generation or were withdrawn")
        .withoutExemplars().register(registry);
    checkpointSeconds = Histogram.builder().name("kaon_checkpoint_seconds")
        .help("Time to write a checkpoint to Cassandra, or to read one back").unit(Unit.SECONDS)
        .labelNames("operation").classicOnly()
        .classicUpperBounds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
        .withoutExemplars().register(registry);
    checkpointBytes = Counter.builder().name("kaon_checkpoint_bytes")
        .help("Checkpoint bytes written to or read from Cassandra").unit(Unit.BYTES)
        .labelNames("operation").withoutExemplars().register(registry);
    checkpointFailures = Counter.builder().name("kaon_checkpoint_failures_total")
        .help("Checkpoint writes that failed (each is retried with backoff)").labelNames("operation")
        .withoutExemplars().register(registry);
    // By reason only, every reason's series from the start: a per-job counter would first appear
    // at 1, and increase() counts no change from a series' first sample (a soak's Prometheus saw
    // none of 50 jobs' generations). A job's generations, with their reasons, are in the API.
    generations = Counter.builder().name("kaon_generations_total")
        .help("Generations formed by the jobs coordinated on this node, by what led to them")
        .labelNames("reason").withoutExemplars().register(registry);
    GenerationReasons.ALL.forEach(generations::initLabelValues);
    resumeSeconds = Histogram.builder().name("kaon_resume_seconds")
        .help("From a fault that ended a generation (a rank or node lost, a deadline, damage) to the next"
            + " generation's first progress report").unit(Unit.SECONDS).labelNames("job_id").classicOnly()
        .classicUpperBounds(0.5, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120)
        .withoutExemplars().register(registry);
    samplesPerSecond = Gauge.builder().name("kaon_job_samples_per_second")
        .help("Samples per second of a job coordinated on this node, over its last epoch").labelNames("job_id")
        .register(registry);
    jobHealth = Gauge.builder().name("kaon_job_health_problem")
        .help("1 while a job coordinated on this node reports a problem in its health (waiting for devices,"
            + " checkpoint writes failing, its journal unreachable), else 0").labelNames("job_id").register(registry);
    cassandraUp = Gauge.builder().name("kaon_cassandra_up")
        .help("Whether this node's Cassandra session answered a query at the last scrape (1) or not (0)")
        .labelNames("session").register(registry);
    grpcRequests = Counter.builder().name("kaon_grpc_requests_total")
        .help("Requests to this node's gRPC API, by method and gRPC status code (0 is OK)")
        .labelNames("method", "code").withoutExemplars().register(registry);
    grpcSeconds = Histogram.builder().name("kaon_grpc_request_seconds")
        .help("Time from a gRPC request to its response's headers (for a stream: its first message)")
        .unit(Unit.SECONDS).labelNames("method").classicOnly()
        .classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
        .withoutExemplars().register(registry);
    // Series that exist before their first event, so that a dashboard or an alert on them has
    // something to read (and rate() a start) on a node where nothing failed yet.
    for (String operation : List.of("write", "read")) {
      checkpointSeconds.initLabelValues(operation);
      checkpointBytes.initLabelValues(operation);
    }
    checkpointFailures.initLabelValues("write");
    GaugeWithCallback.builder().name("kaon_devices")
        .help("This node's devices, free or owned by a worker").labelNames("state")
        .callback(callback -> {
          callback.call(devicesFree.get(), "free");
          callback.call(devicesOwned.get(), "owned");
        }).register(registry);
    GaugeWithCallback.builder().name("kaon_jobs")
        .help("Jobs coordinated on this node, by phase").labelNames("phase")
        .callback(callback -> {
          Map<String, Integer> byPhase = new java.util.TreeMap<>();
          jobPhases.values().forEach(phase -> byPhase.merge(phase, 1, Integer::sum));
          byPhase.forEach((phase, count) -> callback.call(count, phase));
        }).register(registry);
    GaugeWithCallback.builder().name("kaon_cluster_members")
        .help("Members of the cluster as this node sees them, by status (unreachable ones apart)")
        .labelNames("status")
        .callback(callback -> members(system).forEach((status, count) -> callback.call(count, status)))
        .register(registry);
  }

  /** This node's registry, for its {@code /metrics} route and the JVM's metrics. */
  public PrometheusRegistry registry() {
    return registry;
  }

  /** The training metrics of a rank of {@code jobId} that all-reduces over {@code transport}. */
  public Steps steps(String jobId, String transport) {
    if (!stepsMeasured) {
      return Steps.NONE;
    }
    keep(jobId);
    return new Steps(stepPhase.labelValues(jobId, "compute"), stepPhase.labelValues(jobId, "allreduce"),
        stepPhase.labelValues(jobId, "optimizer"), samples.labelValues(jobId), allReduceBytes.labelValues(jobId, transport),
        busBandwidth.labelValues(jobId, transport));
  }

  /** What one rank's steps add to. */
  public static final class Steps {
    /** Steps that are not measured. */
    static final Steps NONE = new Steps(null, null, null, null, null, null);

    private final DistributionDataPoint compute;
    private final DistributionDataPoint exchange;
    private final DistributionDataPoint optimizer;
    private final CounterDataPoint samples;
    private final CounterDataPoint bytes;
    private final GaugeDataPoint busBandwidth;

    private Steps(DistributionDataPoint compute, DistributionDataPoint exchange, DistributionDataPoint optimizer,
        CounterDataPoint samples, CounterDataPoint bytes, GaugeDataPoint busBandwidth) {
      this.compute = compute;
      this.exchange = exchange;
      this.optimizer = optimizer;
      this.samples = samples;
      this.bytes = bytes;
      this.busBandwidth = busBandwidth;
    }

    /** A step of {@code examples} samples and an all-reduce of {@code reducedBytes}, its parts in nanoseconds. */
    public void step(long computeNanos, long exchangeNanos, long optimizerNanos, int examples, long reducedBytes) {
      if (this == NONE) {
        return;
      }
      compute.observe(computeNanos / 1e9);
      exchange.observe(exchangeNanos / 1e9);
      optimizer.observe(optimizerNanos / 1e9);
      samples.inc(examples);
      bytes.inc(reducedBytes);
    }

    /** Over an epoch, {@code reducedBytes} all-reduced among {@code worldSize} ranks in {@code exchangeNanos}. */
    public void epoch(long reducedBytes, long exchangeNanos, int worldSize) {
      if (this != NONE && exchangeNanos > 0 && worldSize > 1) {
        busBandwidth.set(reducedBytes * 2.0 * (worldSize - 1) / worldSize / (exchangeNanos / 1e9));
      }
    }
  }

  /** An all-reduce chunk was dropped as stale. */
  public void staleChunkDropped() {
    staleChunks.inc();
  }

  /** A checkpoint {@code operation} ("write" or "read") of {@code bytes} took {@code nanos}. */
  public void checkpoint(String operation, long bytes, long nanos) {
    checkpointSeconds.labelValues(operation).observe(nanos / 1e9);
    checkpointBytes.labelValues(operation).inc(bytes);
  }

  /** A checkpoint {@code operation} failed. */
  public void checkpointFailed(String operation) {
    checkpointFailures.labelValues(operation).inc();
  }

  /** Job {@code jobId} formed a generation for {@code reason} (its words; counted by {@link GenerationReasons}). */
  public void generationFormed(String jobId, String reason) {
    keep(jobId);
    resumeSeconds.initLabelValues(jobId);
    generations.labelValues(GenerationReasons.of(reason)).inc();
  }

  /** Job {@code jobId} trained again {@code nanos} after a fault ended its generation. */
  public void resumed(String jobId, long nanos) {
    keep(jobId);
    resumeSeconds.labelValues(jobId).observe(nanos / 1e9);
  }

  /** Job {@code jobId}, coordinated here, is in {@code phase}. */
  public void jobPhase(String jobId, String phase) {
    jobPhases.put(jobId, phase);
  }

  /**
   * Job {@code jobId} is no longer coordinated here (it ended, or its coordinator moved): its
   * phase, rate and health leave this node's series, so that an ended job does not look stalled.
   */
  public void jobLeft(String jobId) {
    jobPhases.remove(jobId);
    samplesPerSecond.remove(jobId);
    jobHealth.remove(jobId);
  }

  /** Job {@code jobId}'s health reports a problem, or not. */
  public void jobHealth(String jobId, boolean problem) {
    keep(jobId);
    jobHealth.labelValues(jobId).set(problem ? 1 : 0);
  }

  /** Job {@code jobId} trained {@code rate} samples per second over its last epoch. */
  public void samplesPerSecond(String jobId, double rate) {
    keep(jobId);
    samplesPerSecond.labelValues(jobId).set(rate);
  }

  /** A request to gRPC {@code method} ended with status {@code code} after {@code nanos}. */
  public void grpcRequest(String method, String code, long nanos) {
    grpcRequests.labelValues(method, code).inc();
    grpcSeconds.labelValues(method).observe(nanos / 1e9);
  }

  /** This node has {@code free} and {@code owned} devices. */
  public void devices(int free, int owned) {
    devicesFree.set(free);
    devicesOwned.set(owned);
  }

  /** Whether Cassandra {@code session} ("journal", "checkpoints") answered. */
  public void cassandra(String session, boolean up) {
    cassandraUp.labelValues(session).set(up ? 1 : 0);
  }

  /** Keeps {@code jobId}'s series, dropping those of the oldest job beyond {@link #JOBS_KEPT}. */
  private void keep(String jobId) {
    List<String> dropped = new ArrayList<>();
    synchronized (jobs) {
      jobs.remove(jobId);
      jobs.put(jobId, Boolean.TRUE);
      while (jobs.size() > JOBS_KEPT) {
        String oldest = jobs.keySet().iterator().next();
        jobs.remove(oldest);
        dropped.add(oldest);
      }
    }
    dropped.forEach(this::forget);
  }

  private void forget(String jobId) {
    java.util.function.Function<List<String>, Boolean> ofJob = labels -> labels.get(0).equals(jobId);
    stepPhase.removeIf(ofJob);
    samples.removeIf(ofJob);
    allReduceBytes.removeIf(ofJob);
    busBandwidth.removeIf(ofJob);
    resumeSeconds.removeIf(ofJob);
    samplesPerSecond.removeIf(ofJob);
    jobHealth.removeIf(ofJob);
  }

  /** Members by status, unreachable ones counted as "unreachable". */
  private static Map<String, Integer> members(ActorSystem<?> system) {
    Map<String, Integer> byStatus = new java.util.TreeMap<>();
    var classic = (org.apache.pekko.actor.ExtendedActorSystem) org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system);
    if (!(classic.provider() instanceof org.apache.pekko.cluster.ClusterActorRefProvider)) {
      return byStatus; // a single actor's test system: no cluster to count
    }
    var state = Cluster.get(system).state();
    java.util.Set<Member> unreachable = new java.util.HashSet<>(state.getUnreachable());
    for (Member member : state.getMembers()) {
      String status = unreachable.contains(member) ? "unreachable" : statusName(member.status());
      byStatus.merge(status, 1, Integer::sum);
    }
    return byStatus;
  }

  private static String statusName(MemberStatus status) {
    return status.toString().toLowerCase(java.util.Locale.ROOT);
  }
}
