package kaon.runtime.chaos;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import kaon.actors.chaos.RuntimeFaults;
import kaon.protocol.v1.JobSpecification;
import kaon.runtime.chaos.Scenario.Fault;
import kaon.runtime.chaos.Scenario.FaultRule;
import kaon.runtime.chaos.Scenario.Span;
import kaon.runtime.chaos.Scenario.Target;
import kaon.runtime.chaos.Scenario.Trigger;
import kaon.runtime.cli.client.JobSpecFile;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * Reads a chaos scenario file (YAML). For example:
 *
 * <pre>
 * name: worker kill loop
 * nodes: 3
 * job:                       # a job spec, as kaon submit takes it
 *   task: fashion-mnist-mlp
 *   workers: 2
 *   epochs: 3
 *   checkpoint-every-steps: 100
 * expect: succeeded          # or failed, with failure-mentions: words
 * time-limit: 20m
 * overlap: false             # true: faults on different nodes may strike at once
 * faults:
 *   - at: 30s
 *     kill: node 2
 *     restart-after: 5s
 *   - after-checkpoint: 2
 *     hang: any
 *     for: 2-10s
 *   - every: 20-40s
 *     until: 5m
 *     one-of:
 *       - kill: coordinator
 *       - cassandra-stop: 10-20s
 *   - after-checkpoint: 3       # inside the runtime (the nodes' chaos service):
 *     chunk-corrupt: rank 1     # chunk-drop, chunk-delay (with delay:), chunk-corrupt,
 *     strikes: 1                # slow-rank (with delay:), poison-gradient (value: nan or
 *     for: 30s                  # large), each of rank N or any; checkpoint-write-failure: 20s
 * </pre>
 *
 * <p>Every mistake is reported, each as {@code file:line: field: what is wrong}, before anything
 * runs: a scenario that fails half-way because of a typo would have cost its run.
 */
public final class ScenarioFile {

  /** A scenario that cannot be run, with every mistake found, one per line. */
  public static final class InvalidScenarioException extends Exception {
    InvalidScenarioException(String message) {
      super(message);
    }
  }

  private static final Pattern DURATION = Pattern.compile("([0-9]+)(ms|s|m|h)");
  private static final Pattern SPAN = Pattern.compile("([0-9]+)(?:(ms|s|m|h)?-([0-9]+))?(ms|s|m|h)");
  private static final Pattern NODE = Pattern.compile("node ([0-9]+)");
  private static final Span DEFAULT_RESTART = new Span(Duration.ofSeconds(5), Duration.ofSeconds(5));
  private static final Pattern RANK = Pattern.compile("rank ([0-9]+)");
  /** How long a runtime fault stays armed unless for: says: a poison waits this long to strike. */
  private static final Span DEFAULT_ARMED = new Span(Duration.ofSeconds(30), Duration.ofSeconds(30));
  private static final Span DEFAULT_POISON = new Span(Duration.ofMinutes(2), Duration.ofMinutes(2));

  /** The faults a rule may name, each its own field. */
  private static final List<String> FAULTS = List.of("kill", "hang", "stop", "restart", "cassandra-stop", "cassandra-kill",
      "partition", "packet-loss", "bandwidth", "latency",
      "chunk-drop", "chunk-delay", "chunk-corrupt", "slow-rank", "poison-gradient", "checkpoint-write-failure");
  private static final List<String> NETWORK = List.of("partition", "packet-loss", "bandwidth", "latency");
  /** What a fault's own fields may add. */
  private static final List<String> FAULT_OPTIONS = List.of("restart-after", "stay-down", "for", "delay", "probability",
      "strikes", "value", "one-way", "percent", "rate", "jitter");
  private static final Pattern RATE = Pattern.compile("[0-9]+(kbit|mbit|gbit)");
  private static final Span DEFAULT_NETWORK = new Span(Duration.ofSeconds(20), Duration.ofSeconds(20));

  private final Path file;
  private final List<String> errors = new ArrayList<>();

  private ScenarioFile(Path file) {
    this.file = file;
  }

  /**
   * Reads and checks a scenario.
   *
   * @throws InvalidScenarioException naming the file, line and field of every mistake
   */
  public static Scenario read(Path file) throws InvalidScenarioException {
    Node root;
    try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      root = new Yaml().compose(reader);
    } catch (MarkedYAMLException e) {
      Mark mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
      throw new InvalidScenarioException(file + (mark == null ? "" : ":" + (mark.getLine() + 1)) + ": not valid YAML: "
          + (e.getProblem() != null ? e.getProblem() : e.getContext()));
    } catch (YAMLException | IOException e) {
      throw new InvalidScenarioException(file + ": cannot read: " + e.getMessage());
    }
    ScenarioFile reader = new ScenarioFile(file);
    if (!(root instanceof MappingNode mapping)) {
      throw new InvalidScenarioException(file + ":" + (root == null ? 1 : line(root))
          + ": expected a scenario (name, job, faults, ...)");
    }
    Scenario scenario = reader.scenario(mapping);
    if (!reader.errors.isEmpty()) {
      throw new InvalidScenarioException(String.join(System.lineSeparator(), reader.errors));
    }
    return scenario;
  }

  private Scenario scenario(MappingNode mapping) {
    Fields top = fields(mapping, Set.of("name", "nodes", "job", "expect", "failure-mentions", "accuracy-tolerance",
        "time-limit", "overlap", "faults"));
    String name = top.text("name", null);
    int nodes = top.whole("nodes", 3, 1, 64);
    JobSpecification job = job(top);
    String expect = top.text("expect", "succeeded");
    boolean succeed = true;
    if (expect != null && !expect.equals("succeeded") && !expect.equals("failed")) {
      top.error("expect", "expected succeeded or failed, got \"" + expect + "\"");
    } else {
      succeed = !"failed".equals(expect);
    }
    String mentions = top.text("failure-mentions", "");
    if (!succeed && (mentions == null || mentions.isBlank())) {
      top.error("expect", "a scenario that expects failure says which words the failure mentions (failure-mentions)");
    }
    double tolerance = top.decimal("accuracy-tolerance", 0.015, 0, 1);
    Duration limit = top.duration("time-limit", Duration.ofMinutes(30));
    boolean overlap = top.flag("overlap");
    List<FaultRule> rules = new ArrayList<>();
    Optional<Node> faults = top.node("faults");
    if (faults.isEmpty()) {
      top.error("faults", "missing; list the faults to apply (an empty list for a fault-free run)");
    } else if (!(faults.get() instanceof SequenceNode list)) {
      error(faults.get(), "faults", "expected a list of faults");
    } else {
      for (Node item : list.getValue()) {
        rule(item, nodes, limit).ifPresent(rules::add);
      }
    }
    if (name == null) {
      top.error("name", "missing; give the scenario a name for its report");
    }
    return new Scenario(name == null ? "" : name, nodes, job,
        new Scenario.Expectation(succeed, mentions == null ? "" : mentions, tolerance), limit, overlap, List.copyOf(rules));
  }

  private JobSpecification job(Fields top) {
    Optional<Node> node = top.node("job");
    if (node.isEmpty()) {
      top.error("job", "missing; give the job to run (task, workers, epochs, ...)");
      return JobSpecification.getDefaultInstance();
    }
    if (!(node.get() instanceof MappingNode mapping)) {
      error(node.get(), "job", "expected the job's settings (task: ..., workers: ...)");
      return JobSpecification.getDefaultInstance();
    }
    try {
      return JobSpecFile.read(file, mapping).toSpecification();
    } catch (JobSpecFile.InvalidSpecException e) {
      // Its lines already name the file, line and key.
      errors.add(e.getMessage());
      return JobSpecification.getDefaultInstance();
    }
  }

  private Optional<FaultRule> rule(Node item, int nodes, Duration limit) {
    if (!(item instanceof MappingNode mapping)) {
      error(item, "faults", "expected a fault (a trigger such as at: 30s, and a fault such as kill: node 2)");
      return Optional.empty();
    }
    Set<String> known = new java.util.HashSet<>(Set.of("at", "after-checkpoint", "every", "from", "until", "one-of"));
    known.addAll(FAULTS);
    known.addAll(FAULT_OPTIONS);
    Fields f = fields(mapping, known);
    List<Trigger> triggers = new ArrayList<>();
    if (f.has("at")) {
      triggers.add(new Trigger.At(f.duration("at", Duration.ZERO)));
    }
    if (f.has("after-checkpoint")) {
      triggers.add(new Trigger.AfterCheckpoint(f.whole("after-checkpoint", 1, 1, 1_000_000)));
    }
    if (f.has("every")) {
      triggers.add(new Trigger.Every(f.span("every", null), f.duration("from", Duration.ZERO), f.duration("until", limit)));
    } else {
      for (String key : List.of("from", "until")) {
        if (f.has(key)) {
          f.error(key, "only an every: rule has a " + key + ":");
        }
      }
    }
    if (triggers.size() != 1) {
      error(item, "faults", triggers.isEmpty() ? "no trigger; say when: at: 30s, after-checkpoint: 2 or every: 20-40s"
          : "more than one trigger; give one of at:, after-checkpoint: and every:");
    }
    List<Fault> oneOf = new ArrayList<>();
    if (f.has("one-of")) {
      if (f.node("one-of").get() instanceof SequenceNode list && !list.getValue().isEmpty()) {
        for (Node choice : list.getValue()) {
          if (choice instanceof MappingNode m) {
            Set<String> inner = new java.util.HashSet<>(FAULTS);
            inner.addAll(FAULT_OPTIONS);
            fault(fields(m, inner), nodes, choice).ifPresent(oneOf::add);
          } else {
            error(choice, "one-of", "expected a fault such as kill: any");
          }
        }
      } else {
        f.error("one-of", "expected a list of faults to choose from");
      }
      for (String key : java.util.stream.Stream.concat(FAULTS.stream(), FAULT_OPTIONS.stream()).toList()) {
        if (f.has(key)) {
          f.error(key, "belongs to a fault inside one-of:");
        }
      }
    } else {
      fault(f, nodes, item).ifPresent(oneOf::add);
    }
    if (triggers.size() != 1 || oneOf.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new FaultRule(line(item), triggers.get(0), List.copyOf(oneOf)));
  }

  private Optional<Fault> fault(Fields f, int nodes, Node where) {
    List<String> kinds = FAULTS.stream().filter(f::has).toList();
    if (kinds.size() != 1) {
      error(where, "faults", kinds.isEmpty()
          ? "no fault; give one of " + String.join(":, ", FAULTS) + ":"
          : "more than one fault (" + String.join(", ", kinds) + "); give each its own entry, or use one-of:");
      return Optional.empty();
    }
    String kind = kinds.get(0);
    boolean runtime = FAULTS.indexOf(kind) >= FAULTS.indexOf("chunk-drop");
    boolean network = NETWORK.contains(kind);
    for (String key : List.of("probability", "strikes", "value")) {
      if (f.has(key) && !runtime) {
        f.error(key, "only faults inside the runtime (chunk-*, slow-rank, poison-gradient) take " + key + ":");
      }
    }
    for (String key : List.of("one-way", "percent", "rate", "jitter")) {
      if (f.has(key) && !network) {
        f.error(key, "only network faults (partition, packet-loss, bandwidth, latency) take " + key + ":");
      }
    }
    if (f.has("delay") && !runtime && !network) {
      f.error("delay", "only chunk-delay:, slow-rank: and latency: take a delay:");
    }
    boolean restarts = kind.equals("kill") || kind.equals("stop");
    for (String key : List.of("restart-after", "stay-down")) {
      if (f.has(key) && !restarts) {
        f.error(key, "only kill: and stop: restart a node");
      }
    }
    if (runtime) {
      return runtimeFault(f, kind);
    }
    if (network) {
      return networkFault(f, kind, nodes);
    }
    if (f.has("for") && !kind.equals("hang")) {
      f.error("for", "only hang:, network faults and faults inside the runtime last for: a time (Cassandra faults give"
          + " theirs as their value)");
    }
    boolean stayDown = f.flag("stay-down");
    Span restartAfter = stayDown ? null : f.span("restart-after", DEFAULT_RESTART);
    if (stayDown && f.has("restart-after")) {
      f.error("stay-down", "cannot be combined with restart-after");
    }
    return switch (kind) {
      case "kill" -> f.target("kill", nodes).map(t -> new Fault.Kill(t, restartAfter));
      case "stop" -> f.target("stop", nodes).map(t -> new Fault.Stop(t, restartAfter));
      case "restart" -> f.target("restart", nodes).map(Fault.Restart::new);
      case "hang" -> {
        Span span = f.span("for", null);
        if (!f.has("for")) {
          f.error("hang", "say how long the node hangs (for: 5s or for: 2-10s)");
        }
        yield span == null ? Optional.empty() : f.target("hang", nodes).map(t -> new Fault.Hang(t, span));
      }
      default -> Optional.ofNullable(f.span(kind, null)).map(span -> new Fault.CassandraDown(kind.equals("cassandra-kill"), span));
    };
  }

  /** A network fault: its node and its options; healed after for: (20 s unless given). */
  private Optional<Fault> networkFault(Fields f, String kind, int nodes) {
    Scenario.NetworkKind which = switch (kind) {
      case "partition" -> Scenario.NetworkKind.PARTITION;
      case "packet-loss" -> Scenario.NetworkKind.LOSS;
      case "bandwidth" -> Scenario.NetworkKind.BANDWIDTH;
      default -> Scenario.NetworkKind.DELAY;
    };
    Map<String, Scenario.NetworkKind> options = Map.of("one-way", Scenario.NetworkKind.PARTITION,
        "percent", Scenario.NetworkKind.LOSS, "rate", Scenario.NetworkKind.BANDWIDTH, "delay", Scenario.NetworkKind.DELAY,
        "jitter", Scenario.NetworkKind.DELAY);
    options.forEach((key, owner) -> {
      if (f.has(key) && owner != which) {
        f.error(key, "belongs to " + NETWORK.get(owner.ordinal()) + ":, not " + kind + ":");
      }
    });
    for (String required : List.of("percent", "rate", "delay")) {
      if (options.get(required) == which && !f.has(required)) {
        f.error(kind, "say " + (required.equals("percent") ? "how many packets are lost (percent: 5)"
            : required.equals("rate") ? "the bandwidth (rate: 10mbit)" : "how long (delay: 50ms)"));
      }
    }
    boolean oneWay = f.flag("one-way");
    double percent = f.decimal("percent", 0, 0.01, 100);
    String rate = f.text("rate", "");
    if (rate != null && !rate.isEmpty() && !RATE.matcher(rate.strip()).matches()) {
      f.error("rate", "expected a rate such as 500kbit, 10mbit or 1gbit, got \"" + rate + "\"");
    }
    Duration delay = f.duration("delay", Duration.ZERO);
    Duration jitter = f.duration("jitter", Duration.ZERO);
    Span lasts = f.span("for", DEFAULT_NETWORK);
    Optional<Target> target = f.target(kind, nodes);
    if (lasts == null || target.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new Fault.Network(which, target.get(), oneWay, percent, rate == null ? "" : rate.strip(), delay,
        jitter, lasts));
  }

  /** A fault inside the runtime: its rank (or its time, for checkpoint writes) and its options. */
  private Optional<Fault> runtimeFault(Fields f, String kind) {
    RuntimeFaults.Kind which = switch (kind) {
      case "chunk-drop" -> RuntimeFaults.Kind.CHUNK_DROP;
      case "chunk-delay" -> RuntimeFaults.Kind.CHUNK_DELAY;
      case "chunk-corrupt" -> RuntimeFaults.Kind.CHUNK_CORRUPT;
      case "slow-rank" -> RuntimeFaults.Kind.SLOW_RANK;
      case "checkpoint-write-failure" -> RuntimeFaults.Kind.CHECKPOINT_WRITE;
      default -> "large".equals(f.text("value", "nan")) ? RuntimeFaults.Kind.POISON_LARGE : RuntimeFaults.Kind.POISON_NAN;
    };
    if (f.has("value") && (!kind.equals("poison-gradient") || !List.of("nan", "large").contains(f.text("value", "")))) {
      f.error("value", kind.equals("poison-gradient") ? "expected nan or large" : "only poison-gradient: takes a value:");
    }
    boolean delayed = which == RuntimeFaults.Kind.CHUNK_DELAY || which == RuntimeFaults.Kind.SLOW_RANK;
    if (delayed != f.has("delay")) {
      f.error(delayed ? kind : "delay", delayed ? "say how long (delay: 200ms)" : "only chunk-delay:, slow-rank: and latency: take a delay:");
    }
    boolean chunks = kind.startsWith("chunk-");
    if (f.has("probability") && !chunks) {
      f.error("probability", "only chunk faults strike a share of chunks");
    }
    if (f.has("strikes") && which.once()) {
      f.error("strikes", "a poison strikes once");
    }
    Duration delay = f.duration("delay", Duration.ZERO);
    double probability = f.decimal("probability", 1, 1e-6, 1);
    long strikes = f.whole("strikes", 0, 1, 1_000_000);
    if (which == RuntimeFaults.Kind.CHECKPOINT_WRITE) {
      if (f.has("for")) {
        f.error("for", "checkpoint-write-failure: gives its time as its value (checkpoint-write-failure: 20s)");
      }
      Span span = f.span(kind, null);
      return span == null ? Optional.empty() : Optional.of(new Fault.Runtime(which, -1, 1, Duration.ZERO, 0, span));
    }
    String target = f.text(kind, null);
    int rank;
    Matcher m = target == null ? null : RANK.matcher(target.strip());
    if (target != null && target.strip().equals("any")) {
      rank = -1;
    } else if (m != null && m.matches()) {
      rank = Integer.parseInt(m.group(1));
    } else {
      f.error(kind, "expected rank N or any, got \"" + target + "\"");
      return Optional.empty();
    }
    Span armed = f.span("for", which.once() ? DEFAULT_POISON : DEFAULT_ARMED);
    return armed == null ? Optional.empty() : Optional.of(new Fault.Runtime(which, rank, probability, delay, strikes, armed));
  }

  // ------------------------------------------------------------------ fields

  private Fields fields(MappingNode mapping, Set<String> known) {
    Map<String, NodeTuple> byKey = new LinkedHashMap<>();
    for (NodeTuple tuple : mapping.getValue()) {
      if (!(tuple.getKeyNode() instanceof ScalarNode key)) {
        error(tuple.getKeyNode(), "", "keys must be plain names");
      } else if (!known.contains(key.getValue())) {
        error(key, key.getValue(), "unknown field; the fields here are " + String.join(", ", known.stream().sorted().toList()));
      } else if (byKey.putIfAbsent(key.getValue(), tuple) != null) {
        error(key, key.getValue(), "given twice (first on line " + line(byKey.get(key.getValue()).getKeyNode()) + ")");
      }
    }
    return new Fields(byKey);
  }

  /** The known fields of one mapping, with typed reads that report mistakes at the field's line. */
  private final class Fields {
    private final Map<String, NodeTuple> byKey;

    Fields(Map<String, NodeTuple> byKey) {
      this.byKey = byKey;
    }

    boolean has(String key) {
      return byKey.containsKey(key);
    }

    Optional<Node> node(String key) {
      return Optional.ofNullable(byKey.get(key)).map(NodeTuple::getValueNode);
    }

    void error(String key, String message) {
      NodeTuple tuple = byKey.get(key);
      ScenarioFile.this.errors.add(file + ":" + (tuple == null ? 1 : line(tuple.getKeyNode())) + ": " + key + ": " + message);
    }

    /** The scalar text of a field, {@code otherwise} when absent; a non-scalar is an error (null). */
    String text(String key, String otherwise) {
      Optional<Node> node = node(key);
      if (node.isEmpty()) {
        return otherwise;
      }
      if (node.get() instanceof ScalarNode scalar && !scalar.getTag().equals(Tag.NULL)) {
        return scalar.getValue();
      }
      error(key, "expected a value");
      return null;
    }

    int whole(String key, int otherwise, int least, int most) {
      String text = text(key, null);
      if (text == null) {
        return otherwise;
      }
      try {
        int value = Integer.parseInt(text.strip());
        if (value >= least && value <= most) {
          return value;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      error(key, "expected a whole number from " + least + " to " + most + ", got \"" + text + "\"");
      return otherwise;
    }

    double decimal(String key, double otherwise, double least, double most) {
      String text = text(key, null);
      if (text == null) {
        return otherwise;
      }
      try {
        double value = Double.parseDouble(text.strip());
        if (value >= least && value <= most) {
          return value;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      error(key, "expected a number from " + least + " to " + most + ", got \"" + text + "\"");
      return otherwise;
    }

    boolean flag(String key) {
      String text = text(key, null);
      if (text == null) {
        return false;
      }
      if (!text.equals("true") && !text.equals("false")) {
        error(key, "expected true or false, got \"" + text + "\"");
      }
      return text.equals("true");
    }

    Duration duration(String key, Duration otherwise) {
      String text = text(key, null);
      if (text == null) {
        return otherwise;
      }
      Optional<Duration> duration = ScenarioFile.duration(text);
      if (duration.isEmpty()) {
        error(key, "expected a time such as 500ms, 30s, 5m or 1h, got \"" + text + "\"");
      }
      return duration.orElse(otherwise);
    }

    Span span(String key, Span otherwise) {
      String text = text(key, null);
      if (text == null) {
        return otherwise;
      }
      Matcher m = SPAN.matcher(text.strip());
      if (!m.matches()) {
        error(key, "expected a time (30s) or a range to draw from (20-40s, 500ms-2s), got \"" + text + "\"");
        return otherwise;
      }
      Optional<Span> span = ScenarioFile.span(text);
      if (span.isEmpty()) {
        error(key, "the range runs backwards: \"" + text + "\"");
        return otherwise;
      }
      return span.get();
    }

    Optional<Target> target(String key, int nodes) {
      String text = text(key, null);
      if (text == null) {
        return Optional.empty();
      }
      String t = text.strip();
      if (t.equals("any")) {
        return Optional.of(new Target.Any());
      }
      if (t.equals("coordinator")) {
        return Optional.of(new Target.Coordinator());
      }
      if (t.equals("not-coordinator") && NETWORK.contains(key)) {
        return Optional.of(new Target.NotCoordinator());
      }
      Matcher m = NODE.matcher(t);
      if (m.matches() && Integer.parseInt(m.group(1)) >= 1 && Integer.parseInt(m.group(1)) <= nodes) {
        return Optional.of(new Target.Node(Integer.parseInt(m.group(1))));
      }
      error(key, "expected node N (1 to " + nodes + "), any" + (NETWORK.contains(key) ? ", coordinator or not-coordinator"
          : " or coordinator") + ", got \"" + text + "\"");
      return Optional.empty();
    }
  }

  /** A time such as {@code 500ms}, {@code 30s}, {@code 5m} or {@code 1h}; empty when it is not one. */
  public static Optional<Duration> duration(String text) {
    Matcher m = DURATION.matcher(text.strip());
    return m.matches() ? Optional.of(of(Long.parseLong(m.group(1)), m.group(2))) : Optional.empty();
  }

  /** A time ({@code 30s}) or a range to draw from ({@code 20-40s}, {@code 500ms-2s}); empty when it is neither. */
  public static Optional<Span> span(String text) {
    Matcher m = SPAN.matcher(text.strip());
    if (!m.matches()) {
      return Optional.empty();
    }
    Duration most = of(Long.parseLong(m.group(m.group(3) == null ? 1 : 3)), m.group(4));
    Duration least = m.group(3) == null ? most
        : of(Long.parseLong(m.group(1)), m.group(2) != null ? m.group(2) : m.group(4));
    return least.compareTo(most) > 0 ? Optional.empty() : Optional.of(new Span(least, most));
  }

  private static Duration of(long amount, String unit) {
    return switch (unit) {
      case "ms" -> Duration.ofMillis(amount);
      case "s" -> Duration.ofSeconds(amount);
      case "m" -> Duration.ofMinutes(amount);
      default -> Duration.ofHours(amount);
    };
  }

  private void error(Node node, String field, String message) {
    errors.add(file + ":" + line(node) + ": " + (field.isEmpty() ? "" : field + ": ") + message);
  }

  private static int line(Node node) {
    return node.getStartMark().getLine() + 1;
  }
}
