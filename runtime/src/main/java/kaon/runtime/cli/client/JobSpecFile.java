package kaon.runtime.cli.client;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValue;
import java.io.IOException;
import java.io.Reader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import kaon.protocol.v1.JobSpecification;
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
 * A job spec as a person writes it: a YAML ({@code .yaml}, {@code .yml}) or HOCON ({@code .conf},
 * {@code .hocon}) file of kebab-case keys, command-line flags, or a file with flags on top (a flag
 * replaces the file's value). For example:
 *
 * <pre>
 * task: fashion-mnist-mlp
 * min-workers: 1
 * max-workers: 4
 * epochs: 10
 * learning-rate: 0.05
 * </pre>
 *
 * <p>Only names and types are checked here, each mistake as {@code file:line: key: what is wrong};
 * whether a value makes sense (epochs above zero, bounds in order, a known task) is the server's
 * to say, as only it knows the tasks and the cluster. Keys left out take the task's defaults on
 * the server, except the world size bounds: {@code min-workers} defaults to 1, {@code max-workers}
 * to {@code min-workers}, and {@code workers: N} sets both. An empty value ({@code epochs:} in
 * YAML, {@code null} in HOCON) counts as left out.
 */
public final class JobSpecFile {

  /** The keys of a spec, with the type of their values. */
  public enum Field {
    TASK("task", Type.TEXT),
    /** Shorthand for equal {@link #MIN_WORKERS} and {@link #MAX_WORKERS}. */
    WORKERS("workers", Type.INT),
    MIN_WORKERS("min-workers", Type.INT),
    MAX_WORKERS("max-workers", Type.INT),
    EPOCHS("epochs", Type.INT),
    GLOBAL_BATCH("global-batch", Type.INT),
    OPTIMIZER("optimizer", Type.TEXT),
    LEARNING_RATE("learning-rate", Type.FLOAT),
    MOMENTUM("momentum", Type.FLOAT),
    WEIGHT_DECAY("weight-decay", Type.FLOAT),
    SEED("seed", Type.LONG),
    MAX_STEPS("max-steps", Type.LONG),
    CHECKPOINT_EVERY_STEPS("checkpoint-every-steps", Type.LONG),
    MODEL_OUTPUT("model-output", Type.TEXT);

    private final String key;
    private final Type type;

    Field(String key, Type type) {
      this.key = key;
      this.type = type;
    }

    /** The key as written in files. */
    public String key() {
      return key;
    }

    static Optional<Field> byKey(String key) {
      return Arrays.stream(values()).filter(field -> field.key.equals(key)).findFirst();
    }
  }

  /** A spec that cannot be used, with every mistake found, one per line. */
  public static final class InvalidSpecException extends Exception {
    InvalidSpecException(String message) {
      super(message);
    }
  }

  /** The value types of spec keys, read from a scalar's text. */
  private enum Type {
    TEXT("a string", String.class),
    INT("a whole number", Integer.class),
    LONG("a whole number", Long.class),
    FLOAT("a number", Float.class);

    private static final Pattern WHOLE = Pattern.compile("[-+]?[0-9]+");
    // Plain decimals only: Java would also take "NaN", "1f" or hex, which no one means in a spec.
    private static final Pattern DECIMAL = Pattern.compile("[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");

    private final String expected;
    private final Class<?> javaType;

    Type(String expected, Class<?> javaType) {
      this.expected = expected;
      this.javaType = javaType;
    }

    /** The value of {@code text}; IllegalArgumentException says what was expected. */
    Object parse(String text) {
      return switch (this) {
        case TEXT -> text;
        case INT -> (int) whole(text, Integer.MIN_VALUE, Integer.MAX_VALUE);
        case LONG -> whole(text, Long.MIN_VALUE, Long.MAX_VALUE);
        case FLOAT -> decimal(text);
      };
    }

    private long whole(String text, long min, long max) {
      String trimmed = text.strip();
      if (!WHOLE.matcher(trimmed).matches()) {
        throw new IllegalArgumentException("expected " + expected + ", got \"" + text + "\"");
      }
      BigInteger value = new BigInteger(trimmed);
      if (value.compareTo(BigInteger.valueOf(min)) < 0 || value.compareTo(BigInteger.valueOf(max)) > 0) {
        throw new IllegalArgumentException(
            "expected a whole number from " + min + " to " + max + ", got \"" + text + "\"");
      }
      return value.longValue();
    }

    private float decimal(String text) {
      String trimmed = text.strip();
      if (!DECIMAL.matcher(trimmed).matches()) {
        throw new IllegalArgumentException("expected " + expected + ", got \"" + text + "\"");
      }
      float value = Float.parseFloat(trimmed);
      if (Float.isInfinite(value)) {
        throw new IllegalArgumentException("expected a number, got \"" + text + "\", which is too large");
      }
      return value;
    }
  }

  /** The shapes a value can have in either format. */
  private enum Shape {
    SCALAR(""), NULL("nothing"), LIST("a list"), MAP("a map");

    private final String description;

    Shape(String description) {
      this.description = description;
    }
  }

  /** One top-level key of a file, as either format reads it. */
  private record Entry(String key, int line, Shape shape, String text) {}

  /** The entries of a file, and the line its settings start on (for what is missing). */
  private record Parsed(List<Entry> entries, int firstLine) {}

  /** Where the values came from, for messages; empty for flags only. */
  private final Optional<Path> file;
  private final int firstLine;
  private final Map<Field, Object> values = new EnumMap<>(Field.class);

  private JobSpecFile(Optional<Path> file, int firstLine) {
    this.file = file;
    this.firstLine = firstLine;
  }

  /** A spec with nothing set yet, for one written with flags only. */
  public static JobSpecFile empty() {
    return new JobSpecFile(Optional.empty(), 0);
  }

  /**
   * Reads a spec file; its extension says the format.
   *
   * @throws InvalidSpecException naming the file, line and key of every mistake, or the file
   *     cannot be read
   */
  public static JobSpecFile read(Path file) throws InvalidSpecException {
    String name = file.getFileName() == null ? "" : file.getFileName().toString().toLowerCase(Locale.ROOT);
    if (!Files.isRegularFile(file)) {
      throw new InvalidSpecException(file + ": no such file");
    }
    Parsed parsed;
    if (name.endsWith(".yaml") || name.endsWith(".yml")) {
      parsed = yaml(file);
    } else if (name.endsWith(".conf") || name.endsWith(".hocon")) {
      parsed = hocon(file);
    } else {
      throw new InvalidSpecException(file + ": unknown kind of spec file; name it .yaml, .yml, .conf or .hocon");
    }
    return of(file, parsed);
  }

  /**
   * Reads a spec that is one mapping inside a larger YAML file (a chaos scenario's {@code job:}),
   * with the same checks and messages as a spec file of its own.
   *
   * @throws InvalidSpecException naming the file, line and key of every mistake
   */
  public static JobSpecFile read(Path file, MappingNode mapping) throws InvalidSpecException {
    return of(file, yamlEntries(file, mapping));
  }

  private static JobSpecFile of(Path file, Parsed parsed) throws InvalidSpecException {
    JobSpecFile spec = new JobSpecFile(Optional.of(file), parsed.firstLine());
    List<String> errors = new ArrayList<>();
    Map<Field, Integer> lines = new EnumMap<>(Field.class);
    Map<String, Integer> seen = new HashMap<>();
    for (Entry entry : parsed.entries()) {
      String at = file + ":" + entry.line() + ": " + entry.key() + ": ";
      Integer earlier = seen.putIfAbsent(entry.key(), entry.line());
      Optional<Field> field = Field.byKey(entry.key());
      if (earlier != null) {
        errors.add(at + "given twice (first on line " + earlier + ")");
      } else if (field.isEmpty()) {
        errors.add(at + "unknown key; the keys are "
            + Arrays.stream(Field.values()).map(Field::key).collect(Collectors.joining(", ")));
      } else if (entry.shape() == Shape.SCALAR) {
        try {
          spec.set(field.get(), field.get().type.parse(entry.text()));
          lines.put(field.get(), entry.line());
        } catch (IllegalArgumentException e) {
          errors.add(at + e.getMessage());
        }
      } else if (entry.shape() != Shape.NULL) {
        errors.add(at + "expected " + field.get().type.expected + ", got " + entry.shape().description);
      }
    }
    if (lines.containsKey(Field.WORKERS)) {
      for (Field bound : List.of(Field.MIN_WORKERS, Field.MAX_WORKERS)) {
        if (lines.containsKey(bound)) {
          errors.add(file + ":" + lines.get(bound) + ": " + bound.key() + ": cannot be combined with workers (line "
              + lines.get(Field.WORKERS) + "); give workers for a fixed size, or min-workers and max-workers");
        }
      }
    }
    if (!errors.isEmpty()) {
      throw new InvalidSpecException(String.join(System.lineSeparator(), errors));
    }
    return spec;
  }

  /**
   * Sets a key, replacing what the file said: how command-line flags apply. {@link Field#WORKERS}
   * sets both bounds. A null value leaves the key as it was.
   *
   * @param value a String, Integer, Long or Float as the field's type says
   * @throws IllegalArgumentException when the value has the wrong type for the field
   */
  public JobSpecFile set(Field field, Object value) {
    if (value == null) {
      return this;
    }
    if (!field.type.javaType.isInstance(value)) {
      throw new IllegalArgumentException(field.key() + " takes a " + field.type.javaType.getSimpleName()
          + ", not a " + value.getClass().getSimpleName());
    }
    if (field == Field.WORKERS) {
      values.put(Field.MIN_WORKERS, value);
      values.put(Field.MAX_WORKERS, value);
    } else {
      values.put(field, value);
    }
    return this;
  }

  /**
   * The spec to submit.
   *
   * @throws InvalidSpecException when no task was given
   */
  public JobSpecification toSpecification() throws InvalidSpecException {
    if (!values.containsKey(Field.TASK)) {
      throw new InvalidSpecException(file
          .map(f -> f + ":" + firstLine + ": task: missing; say which task to train (see 'kaon tasks')")
          .orElse("no task: give --task NAME or a spec FILE (see 'kaon tasks')"));
    }
    JobSpecification.Builder spec = JobSpecification.newBuilder();
    int minWorkers = (Integer) values.getOrDefault(Field.MIN_WORKERS, 1);
    spec.setMinWorkers(minWorkers).setMaxWorkers((Integer) values.getOrDefault(Field.MAX_WORKERS, minWorkers));
    values.forEach((field, value) -> {
      switch (field) {
        case TASK -> spec.setTask((String) value);
        case EPOCHS -> spec.setEpochs((Integer) value);
        case GLOBAL_BATCH -> spec.setGlobalBatch((Integer) value);
        case OPTIMIZER -> spec.setOptimizer((String) value);
        case LEARNING_RATE -> spec.setLearningRate((Float) value);
        case MOMENTUM -> spec.setMomentum((Float) value);
        case WEIGHT_DECAY -> spec.setWeightDecay((Float) value);
        case SEED -> spec.setSeed((Long) value);
        case MAX_STEPS -> spec.setMaxSteps((Long) value);
        case CHECKPOINT_EVERY_STEPS -> spec.setCheckpointEverySteps((Long) value);
        case MODEL_OUTPUT -> spec.setModelOutput((String) value);
        case WORKERS, MIN_WORKERS, MAX_WORKERS -> {
          // Set above, with their defaults; WORKERS is never stored.
        }
      }
    });
    return spec.build();
  }

  private static Parsed yaml(Path file) throws InvalidSpecException {
    Node root;
    try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      root = new Yaml().compose(reader);
    } catch (MarkedYAMLException e) {
      Mark mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
      throw new InvalidSpecException(file + (mark == null ? "" : ":" + (mark.getLine() + 1)) + ": not valid YAML: "
          + (e.getProblem() != null ? e.getProblem() : e.getContext()));
    } catch (YAMLException | IOException e) {
      throw new InvalidSpecException(file + ": cannot read: " + e.getMessage());
    }
    if (root == null) {
      return new Parsed(List.of(), 1);
    }
    if (!(root instanceof MappingNode mapping)) {
      throw new InvalidSpecException(file + ":" + line(root) + ": expected key: value lines of job settings");
    }
    return yamlEntries(file, mapping);
  }

  private static Parsed yamlEntries(Path file, MappingNode mapping) throws InvalidSpecException {
    List<Entry> entries = new ArrayList<>();
    for (NodeTuple tuple : mapping.getValue()) {
      if (!(tuple.getKeyNode() instanceof ScalarNode key)) {
        throw new InvalidSpecException(file + ":" + line(tuple.getKeyNode()) + ": keys must be plain names");
      }
      Node value = tuple.getValueNode();
      Shape shape;
      String text = "";
      if (value instanceof ScalarNode scalar) {
        shape = scalar.getTag().equals(Tag.NULL) ? Shape.NULL : Shape.SCALAR;
        text = scalar.getValue();
      } else if (value instanceof SequenceNode) {
        shape = Shape.LIST;
      } else {
        shape = Shape.MAP;
      }
      entries.add(new Entry(key.getValue(), line(key), shape, text));
    }
    return new Parsed(entries, line(mapping));
  }

  private static int line(Node node) {
    return node.getStartMark().getLine() + 1;
  }

  private static Parsed hocon(Path file) throws InvalidSpecException {
    Config config;
    try {
      config = ConfigFactory.parseFile(file.toFile(),
              ConfigParseOptions.defaults().setSyntax(ConfigSyntax.CONF).setAllowMissing(false))
          .resolve();
    } catch (ConfigException e) {
      throw new InvalidSpecException(file + (e.origin() != null && e.origin().lineNumber() > 0
          ? ":" + e.origin().lineNumber() : "") + ": not valid HOCON: " + withoutOrigin(e));
    }
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<String, ConfigValue> setting : config.root().entrySet()) {
      ConfigValue value = setting.getValue();
      Shape shape = switch (value.valueType()) {
        case OBJECT -> Shape.MAP;
        case LIST -> Shape.LIST;
        case NULL -> Shape.NULL;
        case STRING, NUMBER, BOOLEAN -> Shape.SCALAR;
      };
      String text = switch (value.valueType()) {
        case STRING -> (String) value.unwrapped();
        // A number as written (0.10, 1e-3), not as Java would print it.
        case NUMBER, BOOLEAN -> value.render();
        default -> "";
      };
      entries.add(new Entry(setting.getKey(), Math.max(1, value.origin().lineNumber()), shape, text));
    }
    // A HOCON object forgets the order of its keys; report mistakes top to bottom.
    entries.sort(Comparator.comparingInt(Entry::line).thenComparing(Entry::key));
    int firstLine = entries.isEmpty() ? 1 : entries.get(0).line();
    return new Parsed(entries, firstLine);
  }

  /** Typesafe Config puts the file's name and line in front of its message; the caller has both. */
  private static String withoutOrigin(ConfigException e) {
    String message = e.getMessage();
    if (e.origin() != null) {
      String prefix = e.origin().description() + ": ";
      if (message.startsWith(prefix)) {
        return message.substring(prefix.length());
      }
    }
    return message;
  }
}
