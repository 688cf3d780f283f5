package kaon.runtime.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import kaon.actors.training.TaskCatalog;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code kaon node}: a long-running local node. Jobs that were running when the previous node
 * stopped (or was killed) resume on it by themselves from their last checkpoint. It runs until
 * SIGTERM or Ctrl-C, which shut it down gracefully (jobs stay remembered).
 */
@Command(
    name = "node",
    mixinStandardHelpOptions = true,
    description = "Run a local node until stopped; jobs remembered in Cassandra resume on it by themselves.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:stopped", "2:invalid command line", "3:the environment is not ready",
        "4:removed from the cluster (downed, or it could not join): start it again"})
final class NodeCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Option(names = "--devices", description = "CPU slots (workers) of this node when it has no GPU (default: one per core).")
  Integer devices;

  @Option(names = "--threads-per-worker", description = "libtorch threads per worker (default: 1).")
  Integer threadsPerWorker;

  @Option(names = "--data-dir", description = "Directory of the tasks' data files (task default).")
  Path dataDir;

  @Option(names = "--host", description = "Address other nodes reach this one at (default: 127.0.0.1).")
  String host;

  @Option(names = "--port", description = "Cluster port (default: any free one; give one for nodes that others use as a seed).")
  Integer port;

  @Option(names = "--seed", paramLabel = "HOST:PORT", description = "A node of the cluster to join (repeatable); none: a cluster of its own.")
  java.util.List<String> seeds = new java.util.ArrayList<>();

  @Option(names = "--api-port", description = "gRPC API port (default: 50051; 0 for any free one).")
  Integer apiPort;

  @Option(names = "--roles", split = ",", description = "gateway, worker, coordinator (default: all three).")
  java.util.List<String> roles;

  @Override
  public Integer call() throws Exception {
    Config config = ConfigFactory.load();
    if (devices != null) {
      config = config.withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(devices));
    }
    if (threadsPerWorker != null) {
      config = config.withValue("kaon.node.threads-per-slot", ConfigValueFactory.fromAnyRef(threadsPerWorker));
    }
    if (dataDir != null) {
      config = config.withValue("kaon.worker.data-dir", ConfigValueFactory.fromAnyRef(dataDir.toString()));
    }
    if (host != null) {
      config = config.withValue("pekko.remote.artery.canonical.hostname", ConfigValueFactory.fromAnyRef(host));
    }
    if (port != null) {
      config = config.withValue("pekko.remote.artery.canonical.port", ConfigValueFactory.fromAnyRef(port));
    }
    if (!seeds.isEmpty()) {
      java.util.List<String> addresses = new java.util.ArrayList<>();
      for (String seed : seeds) {
        if (!seed.matches("[^:/@]+:\\d{1,5}")) {
          throw new picocli.CommandLine.ParameterException(command.commandLine(), "--seed must be HOST:PORT, was " + seed);
        }
        addresses.add("pekko://" + config.getString("kaon.cluster.name") + "@" + seed);
      }
      config = config.withValue("pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(addresses));
    }
    if (apiPort != null) {
      config = config.withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(apiPort));
    }
    if (roles != null) {
      config = config.withValue("pekko.cluster.roles", ConfigValueFactory.fromIterable(roles));
    }
    PrintWriter out = command.commandLine().getOut();
    KaonNode.Running node = KaonNode.startLocal(config, TaskCatalog.load(getClass().getClassLoader()), line -> {
      out.println(line);
      out.flush();
    });
    ActorSystem<Void> system = node.system();
    out.println("kaon node up: " + system.address()
        + (node.managementUrl() != null ? ", health on " + node.managementUrl() + "/ready" : "")
        + (node.grpcPort() > 0 ? ", API on " + node.grpcHost() + ":" + node.grpcPort() + (node.tls() ? " (TLS)" : "") : "")
        + " (stop with Ctrl-C or SIGTERM)");
    out.flush();
    system.getWhenTerminated().toCompletableFuture().join();
    int code = exitCode(CoordinatedShutdown.get(system).getShutdownReason());
    if (code == REMOVED) {
      command.commandLine().getErr().println("kaon node: removed from the cluster ("
          + CoordinatedShutdown.get(system).getShutdownReason().get() + "); exiting with " + REMOVED + " so that it is started again");
    }
    return code;
  }

  /**
   * 0 when the node was asked to stop (SIGTERM, Ctrl-C), {@value #REMOVED} when the cluster removed
   * it (downed, or its join failed): a supervisor (systemd's {@code Restart=on-failure},
   * {@code cluster.sh start}) starts it again, and it joins as a new member.
   */
  static int exitCode(Optional<CoordinatedShutdown.Reason> reason) {
    boolean removed = reason.isPresent() && (reason.get().equals(CoordinatedShutdown.clusterDowningReason())
        || reason.get().equals(CoordinatedShutdown.clusterJoinUnsuccessfulReason()));
    return removed ? REMOVED : 0;
  }

  /** Exit code of a node the cluster removed. */
  static final int REMOVED = 4;
}
