package kaon.runtime.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import kaon.actors.allreduce.AllReducePeer;
import kaon.actors.allreduce.RingEdge;
import kaon.actors.allreduce.AllReduceSettings;
import kaon.actors.allreduce.AllReduceSettings.Transport;
import kaon.protocol.RingMessage;
import kaon.runtime.KaonSettings;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Ring all-reduce between two JVMs on loopback, over Artery and over the tensor link, next to
 * gloo's {@code all_reduce} measured in the same run.
 *
 * <p>This JVM is rank 0 and times the reductions; it starts rank 1 as a second JVM with the same
 * classpath. Both spawn one {@link AllReducePeer} pair per transport and size, connect them as a
 * coordinator would (rank 1 learns rank 0's address from its command line, rank 0 learns rank
 * 1's from its first output line), and then run the same sequence of reductions; each reduction
 * synchronises the two, as gloo's do. Per size and transport: warm-up reductions, then timed
 * ones (the ask from this thread to the reply, as a training thread sees it), then one of 1s and
 * 2s that must give 3s everywhere. Buffers are zeros while timed, like gloo's.
 *
 * <p>Bus bandwidth = 2(W-1)/W x bytes / median time (W = 2), GB = 1e9 B, as {@code
 * allreduce_gloo.py} reports it. Gloo runs before and after the Kaon runs when Debian's
 * python3-torch is installed; its figure is the mean of the two, since the machine is noisy.
 *
 * <p>Usage: {@code bench/allreduce [--sizes 0.42,10,100] [--transports artery,link] [--reps N]
 * [--no-gloo]}; sizes in MiB, where 0.42 is the MLP gradient of 109,386 floats.
 */
public final class AllReduceBench {

  /** The MLP's gradient (784-128-64-10), whose all-reduce every training step waits for. */
  private static final int MLP_GRADIENT_FLOATS = 109_386;

  private static final Duration ROUND_TIMEOUT = Duration.ofMinutes(2);
  private static final String PEER_FLAG = "--rank1-of";

  private record Size(String label, int floats, int warmup, int reps) {
    long bytes() {
      return (long) floats * Float.BYTES;
    }
  }

  private record Options(List<Size> sizes, List<Transport> transports, boolean gloo, String rank0Address) {}

  /**
   * One figure of the table.
   *
   * @param overLink share of the chunks that went over the tensor link
   * @param cpuNanos CPU time of this JVM during the timed reductions (every thread: GC, I/O, JIT)
   */
  private record Result(Size size, Transport transport, Samples millis, double overLink, long cpuNanos) {}

  /** One row of {@code allreduce_gloo.py}'s RESULT line. */

  private AllReduceBench() {}

  public static void main(String[] args) throws Exception {
    Options options = parse(args);
    if (options.rank0Address() != null) {
      System.exit(runRank1(options));
    }
    runRank0(options, args);
  }

  private static Options parse(String[] args) {
    List<String> sizes = List.of("0.42", "10", "100");
    List<Transport> transports = List.of(Transport.ARTERY, Transport.LINK);
    int reps = 0;
    boolean gloo = true;
    String rank0 = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--sizes" -> sizes = List.of(args[++i].split(","));
        case "--transports" -> transports = Arrays.stream(args[++i].split(",")).map(Transport::parse).toList();
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--no-gloo" -> gloo = false;
        case PEER_FLAG -> rank0 = args[++i];
        default -> throw new IllegalArgumentException("unknown option " + args[i]
            + "; usage: bench/allreduce [--sizes 0.42,10,100] [--transports artery,link] [--reps N] [--no-gloo]");
      }
    }
    List<Size> parsed = new ArrayList<>();
    for (String mib : sizes) {
      parsed.add(size(mib.trim(), reps));
    }
    return new Options(parsed, transports, gloo, rank0);
  }

  /**
   * Warm-up and timed counts give each size about 5 s at Artery's speed, like the ~2 s that
   * allreduce_gloo.py times per size: on a shared machine a shorter median moves with the load.
   * They are counts, not times, since both ranks must run the same number of reductions. Every
   * size gets about 2 s of warm-up at Artery's speed: C2 needs thousands of messages before
   * Artery's stream stages are compiled, and with 20 warm-ups a 10 MiB run that came first
   * measured 25-32 ms instead of 19-21 ms.
   */
  private static Size size(String mib, int reps) {
    if (mib.equals("0.42")) {
      return new Size("0.42 MiB", MLP_GRADIENT_FLOATS, 500, reps > 0 ? reps : 1000);
    }
    double value = Double.parseDouble(mib);
    int floats = (int) (value * (1 << 20) / Float.BYTES);
    if (value <= 1) {
      return new Size(mib + " MiB", floats, 500, reps > 0 ? reps : 1000);
    }
    if (value <= 20) {
      return new Size(mib + " MiB", floats, 100, reps > 0 ? reps : 120);
    }
    return new Size(mib + " MiB", floats, 10, reps > 0 ? reps : 12);
  }

  private static String peerName(Transport transport, int sizeIndex, int rank) {
    return transport.name().toLowerCase(Locale.ROOT) + "-s" + sizeIndex + "-r" + rank;
  }

  // Rank 0: this JVM, which times, runs gloo and prints.

  private static void runRank0(Options options, String[] args) throws Exception {
    Config config = benchConfig();
    double loadBefore = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    Path peers = Path.of(System.getProperty("kaon.peers.dir", "../shared/bench/peers"));
    boolean gloo = options.gloo() && GlooPeer.available(peers);
    List<Map<Long, GlooPeer.Row>> glooRuns = new ArrayList<>();
    if (gloo) {
      glooRuns.add(GlooPeer.run(peers, options.sizes().stream().map(Size::bytes).toList(), freePort()));
    }
    Map<String, ActorRef<RingMessage>> local = new HashMap<>();
    ActorSystem<Void> system = start(config, options, 0, local);
    List<Result> results = new ArrayList<>();
    Process rank1 = startRank1(system, args);
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(rank1.getInputStream(), StandardCharsets.UTF_8));
      String ready = out.readLine();
      if (ready == null || !ready.startsWith("READY ")) {
        throw new IllegalStateException("rank 1 did not start (its log is on stderr above); it said: " + ready);
      }
      String rank1Address = ready.substring("READY ".length());
      connect(system, options, 0, local, system.address().toString(), rank1Address);
      for (int s = 0; s < options.sizes().size(); s++) {
        for (Transport transport : options.transports()) {
          Size size = options.sizes().get(s);
          results.add(run(system, local.get(peerName(transport, s, 0)), 0, size, transport));
          System.err.printf(Locale.ROOT, "  %s over %s: median %.3f ms%n", size.label(), transport, results.get(results.size() - 1).millis().median());
        }
      }
      // Rank 1's CPU time per run, so that the table can count both ends.
      Map<String, Long> rank1Cpu = new HashMap<>();
      for (String line; (line = out.readLine()) != null; ) {
        String[] words = line.split(" ");
        if (words.length == 3 && words[0].equals("CPU")) {
          rank1Cpu.put(words[1].substring(0, words[1].length() - 1), Long.parseLong(words[2]));
        }
      }
      if (!rank1.waitFor(5, TimeUnit.MINUTES) || rank1.exitValue() != 0) {
        throw new IllegalStateException("rank 1 failed (exit " + (rank1.isAlive() ? "none" : rank1.exitValue()) + ")");
      }
      for (int i = 0; i < results.size(); i++) {
        Result r = results.get(i);
        String name = peerName(r.transport(), options.sizes().indexOf(r.size()), 0);
        long theirs = rank1Cpu.getOrDefault(name.substring(0, name.length() - 1), 0L);
        results.set(i, new Result(r.size(), r.transport(), r.millis(), r.overLink(), r.cpuNanos() + theirs));
      }
    } finally {
      rank1.destroy();
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    if (gloo) {
      glooRuns.add(GlooPeer.run(peers, options.sizes().stream().map(Size::bytes).toList(), freePort()));
    }
    double loadAfter = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    print(options, results, glooRuns, loadBefore, loadAfter,
        KaonSettings.fromConfig(config).worker().allReduce().chunkFloats());
  }

  private static Process startRank1(ActorSystem<Void> system, String[] args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // The same heap, direct memory and system properties as this JVM, so both ranks are alike.
    command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(AllReduceBench.class.getName());
    command.addAll(List.of(args));
    command.add(PEER_FLAG);
    command.add(system.address().toString());
    return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
  }

  // Rank 1: the second JVM, which runs the same sequence and checks its results.

  private static int runRank1(Options options) throws Exception {
    Map<String, ActorRef<RingMessage>> local = new HashMap<>();
    ActorSystem<Void> system = start(benchConfig(), options, 1, local);
    try {
      connect(system, options, 1, local, options.rank0Address(), system.address().toString());
      System.out.println("READY " + system.address());
      System.out.flush();
      for (int s = 0; s < options.sizes().size(); s++) {
        for (Transport transport : options.transports()) {
          Result result = run(system, local.get(peerName(transport, s, 1)), 1, options.sizes().get(s), transport);
          System.out.println("CPU " + peerName(transport, s, 1) + " " + result.cpuNanos());
        }
      }
      System.out.flush();
      return 0;
    } catch (Exception | AssertionError e) {
      e.printStackTrace();
      return 1;
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  // Both ranks.

  private static Config benchConfig() {
    // Plain remoting, as notes/artery.md measured it: no cluster is needed for two peers. The
    // peers are children of the guardian, so /user/* puts their chunks on Artery's large-message
    // channel, as the runtime's cluster.conf does for the worker entities' peers.
    return ConfigFactory.parseString("""
            pekko.actor.provider = remote
            pekko.remote.artery.canonical.hostname = "127.0.0.1"
            pekko.remote.artery.canonical.port = 0
            pekko.remote.artery.large-message-destinations = ["/user/*"]
            """)
        .withFallback(ConfigFactory.load());
  }

  /** Starts an actor system whose guardian spawns this rank's peers into {@code peers}. */
  private static ActorSystem<Void> start(
      Config config, Options options, int rank, Map<String, ActorRef<RingMessage>> peers) throws Exception {
    AllReduceSettings settings = KaonSettings.fromConfig(config).worker().allReduce();
    CompletableFuture<Void> spawned = new CompletableFuture<>();
    ActorSystem<Void> system = ActorSystem.create(Behaviors.setup(context -> {
      for (int s = 0; s < options.sizes().size(); s++) {
        for (Transport transport : options.transports()) {
          String name = peerName(transport, s, rank);
          // One job per pair, so that no chunk of one pair can ever reach another.
          peers.put(name, context.spawn(
              AllReducePeer.create("bench-" + name.substring(0, name.length() - 3), 1, rank, 2, settings.withTransport(transport)),
              name));
        }
      }
      spawned.complete(null);
      return Behaviors.empty();
    }), "allreduce-bench", config);
    spawned.get(30, TimeUnit.SECONDS);
    return system;
  }

  /** Connects this rank's peers; rank 1 spawned its peers before rank 0 hears its address. */
  private static void connect(ActorSystem<Void> system, Options options, int rank,
      Map<String, ActorRef<RingMessage>> local, String rank0Address, String rank1Address) {
    ActorRefResolver resolver = ActorRefResolver.get(system);
    for (String name : local.keySet()) {
      String base = name.substring(0, name.length() - 1);
      List<ActorRef<RingMessage>> ring = List.of(
          resolver.resolveActorRef(rank0Address + "/user/" + base + "0"),
          resolver.resolveActorRef(rank1Address + "/user/" + base + "1"));
      local.get(name).tell(new AllReducePeer.Connect(ring));
    }
  }

  /** Warm-up, timed reductions and a checked one on {@code peer}; both ranks call it in step. */
  private static Result run(ActorSystem<Void> system, ActorRef<RingMessage> peer, int rank, Size size, Transport transport)
      throws Exception {
    awaitEdge(system, peer, transport == Transport.LINK ? RingEdge.Edge.LINK : RingEdge.Edge.ARTERY);
    float[] buffer = new float[size.floats()];
    long step = 0;
    for (int i = 0; i < size.warmup(); i++) {
      reduce(system, peer, step++, buffer);
    }
    Samples millis = new Samples();
    long cpu0 = processCpuNanos();
    for (int i = 0; i < size.reps(); i++) {
      long t0 = System.nanoTime();
      reduce(system, peer, step++, buffer);
      millis.add((System.nanoTime() - t0) / 1e6);
    }
    long cpu = processCpuNanos() - cpu0;
    Arrays.fill(buffer, rank + 1);
    reduce(system, peer, step, buffer);
    for (int i = 0; i < buffer.length; i++) {
      if (buffer[i] != 3) {
        throw new AssertionError(size.label() + " over " + transport + ": element " + i + " is " + buffer[i] + ", not 1 + 2");
      }
    }
    AllReducePeer.Stats stats = AskPattern.<RingMessage, AllReducePeer.Stats>ask(
        peer, AllReducePeer.GetStats::new, ROUND_TIMEOUT, system.scheduler()).toCompletableFuture().get();
    return new Result(size, transport, millis, (double) stats.linkChunksSent() / stats.chunksSent(), cpu);
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private static void reduce(ActorSystem<Void> system, ActorRef<RingMessage> peer, long step, float[] buffer) throws Exception {
    AskPattern.<RingMessage, AllReducePeer.Reduced>askWithStatus(
            peer, replyTo -> new AllReducePeer.Reduce(step, buffer, replyTo), ROUND_TIMEOUT, system.scheduler())
        .toCompletableFuture().get();
  }

  /** Waits until the peer's chunks take the transport being measured, not a fallback. */
  private static void awaitEdge(ActorSystem<Void> system, ActorRef<RingMessage> peer, RingEdge.Edge wanted)
      throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    RingEdge.Edge edge;
    do {
      edge = AskPattern.<RingMessage, AllReducePeer.Stats>ask(
          peer, AllReducePeer.GetStats::new, ROUND_TIMEOUT, system.scheduler()).toCompletableFuture().get().edge();
      if (edge == RingEdge.Edge.CONNECTING || edge == RingEdge.Edge.UNCONNECTED) {
        Thread.sleep(10); // a poll, but it must not take a core from the other rank's set-up
      }
    } while ((edge == RingEdge.Edge.CONNECTING || edge == RingEdge.Edge.UNCONNECTED) && System.nanoTime() < deadline);
    if (edge != wanted) {
      // Measured anyway: the table shows the share of chunks that went over the link.
      System.err.println("warning: " + peer.path().name() + " uses " + edge + ", not " + wanted);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  // The table.

  private static void print(Options options, List<Result> results, List<Map<Long, GlooPeer.Row>> glooRuns,
      double loadBefore, double loadAfter, int chunkFloats) {
    System.out.println();
    System.out.printf(Locale.ROOT,
        "allreduce: ring all-reduce of float32 between 2 JVMs on 127.0.0.1, chunks of %d KiB; %d cores, load average %.2f before, %.2f after%n",
        chunkFloats * Float.BYTES / 1024, Runtime.getRuntime().availableProcessors(), loadBefore, loadAfter);
    System.out.println("busbw = 2(W-1)/W x bytes / median time, W = 2, GB = 1e9 B; CPU s/GB: CPU time of both JVMs per GB sent by both ranks"
        + (glooRuns.isEmpty() ? "" : "; gloo: mean of " + glooRuns.size() + " runs of allreduce_gloo.py in this run (before and after)"));
    System.out.printf(Locale.ROOT, "%-10s %9s %-9s %5s %10s %10s %8s %9s %8s %9s %9s %8s%n",
        "size", "floats", "transport", "reps", "median ms", "min ms", "busbw", "via link", "CPU s/GB", "gloo ms", "gloo bw", "x gloo");
    for (Result r : results) {
      double median = r.millis().median();
      double busbw = r.size().bytes() / (median / 1e3) / 1e9;
      String glooMs = "-";
      String glooBw = "-";
      String ratio = "-";
      if (!glooRuns.isEmpty() && glooRuns.stream().allMatch(g -> g.containsKey(r.size().bytes()))) {
        double ms = glooRuns.stream().mapToDouble(g -> g.get(r.size().bytes()).medianSeconds() * 1e3).average().orElseThrow();
        double bw = glooRuns.stream().mapToDouble(g -> g.get(r.size().bytes()).busbw()).average().orElseThrow();
        glooMs = String.format(Locale.ROOT, "%.3f", ms);
        glooBw = String.format(Locale.ROOT, "%.3f", bw);
        ratio = String.format(Locale.ROOT, "%.2fx", busbw / bw);
      }
      // Each of the W = 2 ranks sends 2(W-1)/W of the buffer per reduction.
      double gbSent = 2.0 * r.size().bytes() * r.millis().size() / 1e9;
      System.out.printf(Locale.ROOT, "%-10s %,9d %-9s %5d %10.3f %10.3f %8.3f %8.0f%% %8.2f %9s %9s %8s%n",
          r.size().label(), r.size().floats(), r.transport().name().toLowerCase(Locale.ROOT), r.millis().size(),
          median, r.millis().min(), busbw, 100 * r.overLink(), r.cpuNanos() / 1e9 / gbSent, glooMs, glooBw, ratio);
    }
    if (!glooRuns.isEmpty()) {
      for (int i = 0; i < glooRuns.size(); i++) {
        StringBuilder line = new StringBuilder("gloo run " + (i + 1) + ":");
        for (GlooPeer.Row g : glooRuns.get(i).values()) {
          line.append(String.format(Locale.ROOT, "  %,d B %.3f ms %.3f GB/s", g.bytes(), g.medianSeconds() * 1e3, g.busbw()));
        }
        System.out.println(line);
      }
    }
    System.out.println("goals: link >= 1.0x gloo at 10 MiB (gloo: 1.31 GB/s on the idle machine), artery >= 0.35x");
  }
}
