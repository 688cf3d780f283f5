package kaon.runtime;

import ai.djl.engine.Engine;
import com.typesafe.config.Config;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.job.JobEntity;
import kaon.actors.job.JournalProbe;
import kaon.actors.liveness.LivenessDowning;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.training.TaskCatalog;
import kaon.actors.worker.DeviceSlot;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.joblog.JobLog;
import kaon.actors.joblog.JobLogServer;
import kaon.actors.worker.NodeAgent;
import kaon.actors.worker.TaskWarmup;
import kaon.runtime.grpc.BearerToken;
import kaon.runtime.grpc.GrpcServer;
import kaon.runtime.grpc.GrpcSettings;
import kaon.runtime.health.ManagementTls;
import kaon.runtime.health.NodeHealth;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;
import org.apache.pekko.management.javadsl.PekkoManagement;

/**
 * A Kaon node: an actor system in the cluster with this node's devices, the worker and job
 * sharding regions, and (later) the gRPC gateway. {@link #init} is what tests reuse.
 */
public final class KaonNode {

  /** Nodes with this role serve the gRPC API. */
  public static final String GATEWAY_ROLE = "gateway";

  private KaonNode() {}

  /**
   * Starts a node, joining its cluster as {@link JoinPlan} decides from {@code config}: the seed
   * nodes it lists, Cluster Bootstrap over discovery (VMs), or a cluster of its own (the local mode
   * of {@code kaon train} and a lone {@code kaon node}). Refuses, naming the settings, a
   * configuration that would form a second cluster or keep jobs in a Cassandra of its own.
   * Cassandra (embedded where allowed) and device discovery block; both happen here, before any
   * actor runs.
   */
  public static Running startLocal(Config config, TaskCatalog catalog, java.util.function.Consumer<String> say) {
    JoinPlan plan = NodeConfig.plan(config);
    if (!plan.problems().isEmpty()) {
      throw new IllegalStateException("this node will not start:\n  " + String.join("\n  ", plan.problems()));
    }
    String logDir = config.getString("kaon.node.log-dir").trim();
    if (!logDir.isEmpty()) {
      String problem = NodeLogFile.attach(Path.of(logDir));
      if (problem != null) {
        say.accept(problem);
      }
    }
    Config withCassandra = CassandraConnection.prepare(NodeConfig.apply(config, plan), plan, say);
    KaonSettings settings = KaonSettings.fromConfig(withCassandra);
    GrpcSettings grpc = GrpcSettings.fromConfig(withCassandra);
    BearerToken token;
    try {
      token = BearerToken.resolve(grpc);
    } catch (java.io.IOException e) {
      throw new IllegalStateException("cannot read or write the API token " + grpc.tokenFile() + ": " + e.getMessage(), e);
    }
    if (NodeConfig.isVm(withCassandra) && !token.required()) {
      // Anyone who reaches a VM's address could otherwise submit, cancel and drain.
      throw new IllegalStateException("this node will not start:\n  kaon.grpc.auth.token-file (or token) names no token:"
          + " on VMs (kaon.mode = vm) the API requires one; write it to " + grpc.tokenFile());
    }
    // Loading the PyTorch engine to count devices takes seconds; the cluster join needs no
    // devices, so both go on at once, and the devices are awaited only where the workers start.
    java.util.concurrent.CompletableFuture<List<DeviceSlot>> devices = new java.util.concurrent.CompletableFuture<>();
    Thread discovery = new Thread(() -> {
      try {
        devices.complete(discoverDevices(settings));
      } catch (Throwable t) {
        devices.completeExceptionally(t);
      }
    }, "kaon-device-discovery");
    discovery.setDaemon(true);
    discovery.start();
    String name = withCassandra.getString("kaon.cluster.name");
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), name, withCassandra);
    try {
      Cluster cluster = Cluster.get(system);
      // The management port (/ready, /metrics, and bootstrap's contact point) binds while the
      // node goes on starting: a joining node's sharding regions and device agent used to wait
      // for it, and a job growing onto the node waited for them (2 s of a join on busy cores,
      // bench/recovery). Bootstrap, which others reach through that port, starts once it is bound.
      java.util.concurrent.CompletableFuture<String> management = NodeConfig.managementEnabled(withCassandra, plan)
          ? startManagement(system, withCassandra, plan.tls())
          : java.util.concurrent.CompletableFuture.completedFuture(null);
      switch (plan.join()) {
        // A cluster of its own.
        case ALONE -> cluster.manager().tell(Join.create(cluster.selfMember().address()));
        // Pekko joins the seeds by itself.
        case SEEDS -> { }
        // Probes the discovered nodes' management ports; joins the cluster they are in, or forms
        // one with them when none is in a cluster and all answered (see bootstrap.conf).
        case DISCOVERY -> management = management.thenApply(url -> {
          ClusterBootstrap.get(system).start();
          return url;
        });
      }
      // The journal's session connects on first use, which would be the first /ready (or the
      // first coordinator here) after everything else; connecting beside the checkpoint store's
      // session saves a restarted node those seconds. Started only now: earlier, on two cores, it
      // slows the management port and the join, which matter more. Its failures are /ready's.
      JournalProbe.ping(system, settings.job().journalSession());
      // The journal's time-based UUIDs start by reading this host's interfaces and pid, once per
      // JVM; done at the first write or recovery here, that was part of a coordinator's failover.
      system.executionContext().execute(com.datastax.oss.driver.api.core.uuid.Uuids::timeBased);
      CheckpointStore store = init(system, settings, devices.get(), catalog);
      boolean gateway = grpc.enabled() && cluster.selfMember().hasRole(GATEWAY_ROLE);
      NodeHealth health = NodeHealth.get(system);
      health.started(store, settings.job().journalSession(), stateDir(withCassandra), settings.worker().dataDir(),
          cluster.selfMember().hasRole(WorkerEntity.ROLE), gateway);
      int port = -1;
      if (gateway) {
        ServerBinding binding = GrpcServer.start(system, grpc, token, catalog, store).toCompletableFuture()
            .get(30, java.util.concurrent.TimeUnit.SECONDS);
        port = binding.localAddress().getPort();
        health.apiBound();
      }
      return new Running(system, withCassandra.getString("kaon.grpc.interface"), port, grpc.tls(),
          management.get(30, java.util.concurrent.TimeUnit.SECONDS));
    } catch (Exception e) {
      system.terminate();
      Throwable cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
      throw new IllegalStateException("the node did not start: " + cause.getMessage(), cause);
    }
  }

  /**
   * Binds the management port, over HTTPS with the cluster's certificates when {@code tls} (for the
   * server and for bootstrap's probes of the other nodes, which use the default client context).
   * On a thread of its own: starting it builds its routes first, which alone took 2 s on a busy
   * core, and neither this thread nor an actor's should wait for that.
   */
  private static java.util.concurrent.CompletableFuture<String> startManagement(ActorSystem<Void> system, Config config,
      boolean tls) {
    java.util.concurrent.Executor aside = task -> {
      Thread thread = new Thread(task, "kaon-management-start");
      thread.setDaemon(true);
      thread.start();
    };
    return java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      if (!tls) {
        return PekkoManagement.get(system).start();
      }
      Map<String, String> files = NodeConfig.tlsFiles(config);
      ManagementTls certificates = new ManagementTls(
          Path.of(files.get("certificate")), Path.of(files.get("private-key")), Path.of(files.get("ca")));
      Http.get(system).setDefaultClientHttpsContext(certificates.client());
      return PekkoManagement.get(system).start(s -> s.withHttpsConnectionContext(certificates.server()));
    }, aside).thenCompose(java.util.function.Function.identity()).thenApply(Object::toString);
  }

  private static java.nio.file.Path stateDir(Config config) {
    String dir = config.getString("kaon.node.state-dir");
    return dir.isBlank() ? null : java.nio.file.Path.of(dir);
  }

  /**
   * A started node.
   *
   * @param system its actor system; terminate it to stop the node
   * @param grpcHost the interface its gRPC gateway binds
   * @param grpcPort port of its gRPC gateway, or -1 when it serves none
   * @param tls whether the gateway speaks TLS
   * @param managementUrl where {@code /alive} and {@code /ready} are served, or null when not
   */
  public record Running(ActorSystem<Void> system, String grpcHost, int grpcPort, boolean tls, String managementUrl) {}

  /**
   * Registers this node's device agent and the sharding regions.
   *
   * @return the checkpoint store they use, which also holds the jobs' models
   */
  public static CheckpointStore init(
      ActorSystem<?> system, KaonSettings settings, List<DeviceSlot> devices, TaskCatalog catalog) {
    // Only a worker node offers its devices: a census counting a gateway's or a coordinator's
    // cores would size generations for ranks that can never be placed there.
    boolean worker = org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().hasRole(WorkerEntity.ROLE);
    TaskWarmup warmup = worker && settings.worker().warmSpareDevices()
        ? new TaskWarmup(catalog, settings.worker().dataDir()) : null;
    ActorRef<NodeAgent.Command> nodeAgent = system.systemActorOf(NodeAgent.create(worker ? devices : List.of(), warmup),
        NodeAgent.NAME, org.apache.pekko.actor.typed.Props.empty());
    // Every node keeps its lines about each job and serves them to `kaon logs` on any gateway.
    JobLogCapture.install(JobLog.jvm());
    ActorRef<JobLogServer.Read> jobLog = system.systemActorOf(
        JobLogServer.create(JobLog.jvm(), system.address().toString()), "job-log", org.apache.pekko.actor.typed.Props.empty());
    system.receptionist().tell(Receptionist.register(JobLogServer.SERVICE_KEY, jobLog));
    // Every node listens for liveness watchers from the start (a port that cannot be bound shows
    // in the log now, not at the first rank) and, unless turned off, downs the nodes it sees end.
    NodeLiveness.Endpoint liveness = NodeLiveness.endpointOf(system);
    if (liveness != null && NodeLiveness.get(system).settings().downing()) {
      system.systemActorOf(LivenessDowning.create(), "liveness-downing", org.apache.pekko.actor.typed.Props.empty());
    }
    // The JVM's own figures (memory, GC, threads) beside Kaon's, in the node's registry.
    io.prometheus.metrics.instrumentation.jvm.JvmMetrics.builder()
        .register(kaon.actors.metrics.KaonMetrics.get(system).registry());
    CheckpointStore store = CheckpointStore.create(system, settings.checkpoint());
    WorkerEntity.init(system, nodeAgent, catalog, store, settings.worker());
    JobEntity.init(system, store, settings.job());
    return store;
  }

  /**
   * The devices of this machine: every GPU DJL sees, otherwise {@code cpu-slots} CPU slots (one
   * per core by default) of {@code threads-per-slot} threads each.
   */
  public static List<DeviceSlot> discoverDevices(KaonSettings settings) {
    int gpus = Engine.getEngine("PyTorch").getGpuCount();
    List<DeviceSlot> slots = new ArrayList<>();
    if (gpus > 0) {
      for (int i = 0; i < gpus; i++) {
        slots.add(new DeviceSlot("gpu:" + i, "gpu" + i, settings.threadsPerSlot()));
      }
      return slots;
    }
    int count = settings.cpuSlots() > 0
        ? settings.cpuSlots()
        : Math.max(1, Runtime.getRuntime().availableProcessors() / settings.threadsPerSlot());
    for (int i = 0; i < count; i++) {
      slots.add(new DeviceSlot("cpu:" + i, "cpu", settings.threadsPerSlot()));
    }
    return slots;
  }
}
