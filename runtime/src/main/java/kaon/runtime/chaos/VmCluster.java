package kaon.runtime.chaos;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A chaos run's cluster on the namespace VMs of {@code deploy/vm/netns-vms.sh}: three nodes, each
 * installed from the distribution tarball into a network namespace of its own with its own address,
 * and Cassandra in a fourth, all on a bridge to this host. Beside the process and storage faults of
 * the local cluster it takes network faults: partitions, packet loss, a bandwidth limit, and delay
 * with jitter (through {@link DelayProxy}s on this host, since the kernel has no netem).
 *
 * <p>It runs as root (namespaces, iptables), on an address range and namespace names of its own,
 * with everything under its directory. The nodes serve the chaos service: the script starts them
 * with this run's environment, which enables their runtime faults and gives its token.
 */
public final class VmCluster implements ChaosCluster {

  private static final int NODES = 3;
  private static final String SCRIPT = "deploy/vm/netns-vms.sh";

  private final Path home;
  private final Path dir;
  private final Path tarball;
  private final String net;
  private final Pattern address;
  private final String chaosToken;
  private final Map<String, String> env = new LinkedHashMap<>();
  /** The delaying proxies of each node with a delay fault, one per node they forward to. */
  private final Map<Integer, List<DelayProxy>> proxies = new LinkedHashMap<>();
  /** Proxies of delay faults that are over: plain relays for the connections they still carry. */
  private final List<DelayProxy> relays = new ArrayList<>();

  /**
   * The VMs of a run living in {@code dir}, installed from {@code tarball} by the Kaon checkout
   * {@code home}'s script, on the address range {@code net} ({@code 10.78.0}: .1 this host, .10
   * Cassandra, .11 to .13 the nodes).
   */
  public VmCluster(Path home, Path dir, Path tarball, String net) throws IOException {
    if (!Files.isExecutable(home.resolve(SCRIPT))) {
      throw new NoSuchFileException(home.resolve(SCRIPT).toString(), null,
          "a chaos run on the namespace VMs needs a Kaon checkout (KAON_HOME) with " + SCRIPT);
    }
    if (!Files.isRegularFile(tarball)) {
      throw new NoSuchFileException(tarball.toString(), null,
          "the VMs install Kaon from its distribution tarball (mvn -B package -pl deploy -am builds it)");
    }
    this.home = home;
    this.dir = dir;
    this.tarball = tarball;
    this.net = net;
    this.address = Pattern.compile("pekko://[^@]+@" + Pattern.quote(net) + "\\.1([0-9]):");
    Files.createDirectories(dir);
    byte[] secret = new byte[16];
    new SecureRandom().nextBytes(secret);
    this.chaosToken = "chaos-admin-" + HexFormat.of().formatHex(secret);
    // The API token the script installs on the VMs (it keeps one that exists): known from the
    // start, since the run's API clients are made before the VMs are up.
    Path tokenFile = dir.resolve("token");
    if (!Files.isRegularFile(tokenFile)) {
      new SecureRandom().nextBytes(secret);
      Files.writeString(tokenFile, HexFormat.of().formatHex(secret) + "\n");
      Files.setPosixFilePermissions(tokenFile, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    }
    env.put("KAON_VMS_DIR", dir.toString());
    env.put("KAON_VMS_NET", net);
    env.put("KAON_VMS_TAG", "kaonchaos");
    // The nodes inherit this from the script that starts them: runtime faults, with their token.
    env.put("KAON_CHAOS_RUNTIME_FAULTS", "on");
    env.put("KAON_CHAOS_TOKEN", chaosToken);
  }

  @Override
  public int size() {
    return NODES;
  }

  @Override
  public String apiEndpoint(int node) {
    return net + ".1" + node + ":50051";
  }

  @Override
  public String token() {
    try {
      return Files.readString(dir.resolve("token")).strip();
    } catch (IOException e) {
      throw new IllegalStateException("the VMs have no API token yet (" + dir.resolve("token") + ")", e);
    }
  }

  @Override
  public String chaosToken() {
    return chaosToken;
  }

  @Override
  public HistoryRecorder.Store store() {
    // The keyspaces kaon admin apply-schema creates (its defaults), on the Cassandra VM.
    return new HistoryRecorder.Store(net + ".10", 9042, "kaon", "kaon_journal");
  }

  @Override
  public void startAll() throws IOException, InterruptedException {
    if (!Files.isRegularFile(dir.resolve("vm1/root/etc/systemd/system/kaon-node.service"))) {
      script("install", tarball.toString());
    } else {
      cassandraUp();
    }
    for (int k = 1; k <= NODES; k++) {
      start(k);
    }
  }

  @Override
  public void start(int node) throws IOException, InterruptedException {
    script("start", Integer.toString(node));
  }

  @Override
  public boolean running(int node) {
    try {
      long pid = Long.parseLong(Files.readString(dir.resolve("vm" + node).resolve("node.pid")).strip());
      return LocalCluster.alive(pid);
    } catch (IOException | NumberFormatException e) {
      return false;
    }
  }

  @Override
  public void kill(int node) throws IOException, InterruptedException {
    script("kill", Integer.toString(node));
  }

  @Override
  public void terminate(int node) throws IOException, InterruptedException {
    script("cont", Integer.toString(node)); // a hung node acts on SIGTERM only once continued
    script("stop", Integer.toString(node));
  }

  @Override
  public void hang(int node, boolean hang) throws IOException, InterruptedException {
    script(hang ? "hang" : "cont", Integer.toString(node));
  }

  @Override
  public void cassandraDown(boolean kill) throws IOException, InterruptedException {
    script("cassandra", kill ? "kill" : "stop");
  }

  @Override
  public void cassandraUp() throws IOException, InterruptedException {
    script("cassandra", "start");
  }

  @Override
  public boolean network() {
    return true;
  }

  @Override
  public void partition(int node, boolean oneWay) throws IOException, InterruptedException {
    if (oneWay) {
      script("partition", Integer.toString(node), "one-way");
    } else {
      script("partition", Integer.toString(node));
    }
  }

  @Override
  public void loss(int node, double percent) throws IOException, InterruptedException {
    script("loss", Integer.toString(node), String.format(Locale.ROOT, "%.3f", percent));
  }

  @Override
  public void rate(int node, String rate) throws IOException, InterruptedException {
    script("rate", Integer.toString(node), rate);
  }

  @Override
  public void delay(int node, Duration delay, Duration jitter, long seed) throws IOException, InterruptedException {
    // A proxy per destination: node K's connections to J go through J's, and J's to K through K's.
    List<DelayProxy> started = new ArrayList<>();
    InetAddress host = InetAddress.getByName(net + ".1");
    for (int k = 1; k <= NODES; k++) {
      started.add(new DelayProxy(host, new InetSocketAddress(net + ".1" + k, 25520), delay, jitter, seed + k));
    }
    synchronized (proxies) {
      proxies.put(node, started);
    }
    List<String> args = new ArrayList<>(List.of("divert", Integer.toString(node)));
    started.forEach(p -> args.add(Integer.toString(p.port())));
    script(args.toArray(String[]::new));
  }

  @Override
  public void heal(int node) throws IOException, InterruptedException {
    script("heal", Integer.toString(node));
    List<DelayProxy> delayed;
    synchronized (proxies) {
      delayed = proxies.remove(node);
    }
    if (delayed != null) {
      delayed.forEach(DelayProxy::relax);
      synchronized (proxies) {
        relays.addAll(delayed);
      }
    }
  }

  @Override
  public Optional<Integer> nodeOf(String clusterAddress) {
    Matcher m = address.matcher(clusterAddress);
    if (!m.lookingAt()) {
      return Optional.empty();
    }
    int node = Integer.parseInt(m.group(1));
    return node >= 1 && node <= NODES ? Optional.of(node) : Optional.empty();
  }

  @Override
  public List<String> logs() {
    List<String> logs = new ArrayList<>();
    for (int k = 1; k <= NODES; k++) {
      logs.add(dir.resolve("vm" + k).resolve("node.log").toString());
    }
    return logs;
  }

  @Override
  public void shutDown() throws IOException, InterruptedException {
    synchronized (proxies) {
      proxies.values().forEach(list -> list.forEach(DelayProxy::close));
      proxies.clear();
      relays.forEach(DelayProxy::close);
      relays.clear();
    }
    script("down");
  }

  /** Runs the script with this run's environment, its output appended to {@code commands.log}. */
  private void script(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(home.resolve(SCRIPT).toString()));
    command.addAll(List.of(args));
    LocalCluster.run(command, env, dir.resolve("commands.log"), 10);
  }
}
