package kaon.runtime.chaos;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The processes a chaos run strikes and the store it reads: the nodes (numbered from 1) and the
 * Cassandra they use. Its methods block until the fault took effect (a killed node is gone, a
 * started one is up), and are called from several fault threads at once, never twice at once for
 * the same node.
 */
public interface ChaosCluster {

  /** How many nodes the cluster has. */
  int size();

  /** Where node {@code node}'s API answers ({@code host:port}). */
  String apiEndpoint(int node);

  /** The API's bearer token. */
  String token();

  /**
   * The token of the nodes' chaos service, which they serve because the cluster enabled their
   * runtime faults ({@code kaon.chaos.runtime-faults.enabled}).
   */
  String chaosToken();

  /** Where the recorder reads checkpoints and journals. */
  HistoryRecorder.Store store();

  /** Starts every node that does not run (the run's first step). */
  void startAll() throws IOException, InterruptedException;

  /** Starts node {@code node} if it does not run, and waits until it is up. */
  void start(int node) throws IOException, InterruptedException;

  /** Whether node {@code node}'s process runs (a hung one does). */
  boolean running(int node);

  /** SIGKILLs node {@code node} and waits until its process is gone. */
  void kill(int node) throws IOException, InterruptedException;

  /** SIGTERMs node {@code node} (it leaves the cluster gracefully) and waits until it exited. */
  void terminate(int node) throws IOException, InterruptedException;

  /** SIGSTOPs ({@code hang}) or SIGCONTs node {@code node}'s process. */
  void hang(int node, boolean hang) throws IOException, InterruptedException;

  /** Stops Cassandra (SIGKILL when {@code kill}, else a graceful SIGTERM). */
  void cassandraDown(boolean kill) throws IOException, InterruptedException;

  /** Starts Cassandra again and waits until it answers. */
  void cassandraUp() throws IOException, InterruptedException;

  /** Whether it takes network faults (the namespace VMs do; processes on one host share its loopback). */
  default boolean network() {
    return false;
  }

  /** Cuts node {@code node} off from the other nodes: both ways, or one way (it sends but receives nothing). */
  default void partition(int node, boolean oneWay) throws IOException, InterruptedException {
    throw new UnsupportedOperationException("network faults need the namespace VMs (--cluster vms)");
  }

  /** Drops {@code percent} % of node {@code node}'s packets, each way. */
  default void loss(int node, double percent) throws IOException, InterruptedException {
    throw new UnsupportedOperationException("network faults need the namespace VMs (--cluster vms)");
  }

  /** Limits node {@code node}'s bandwidth to {@code rate} (tc's units: 10mbit), each way. */
  default void rate(int node, String rate) throws IOException, InterruptedException {
    throw new UnsupportedOperationException("network faults need the namespace VMs (--cluster vms)");
  }

  /** Delays node {@code node}'s cluster traffic by {@code delay} plus up to {@code jitter}, each way. */
  default void delay(int node, Duration delay, Duration jitter, long seed) throws IOException, InterruptedException {
    throw new UnsupportedOperationException("network faults need the namespace VMs (--cluster vms)");
  }

  /** Undoes the network faults on node {@code node} (a partition of it included). */
  default void heal(int node) throws IOException, InterruptedException {
    throw new UnsupportedOperationException("network faults need the namespace VMs (--cluster vms)");
  }

  /** The node of a cluster address as the API gives it ({@code pekko://kaon@host:port}), if it is one of ours. */
  Optional<Integer> nodeOf(String clusterAddress);

  /** Where the nodes' logs are, for the report. */
  List<String> logs();

  /** Stops everything the run started (the nodes and its Cassandra). */
  void shutDown() throws IOException, InterruptedException;
}
