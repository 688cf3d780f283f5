package kaon.runtime.cli.client;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;
import picocli.CommandLine.Option;

/**
 * {@code -o table|json|yaml} of the read commands: the table for people (the default), or the
 * API's own messages for scripts, in protobuf's JSON mapping (field names in lowerCamelCase, 64-bit
 * numbers as strings, enums by name, fields at their defaults left out) or the same as YAML.
 */
public final class OutputFormat {

  /** The formats there are. */
  public enum Format { table, json, yaml }

  @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", defaultValue = "table",
      description = "table (the default), json or yaml: the API's messages as they are, for scripts.")
  Format format = Format.table;

  /** Whether the command prints its table. */
  public boolean table() {
    return format == Format.table;
  }

  /** Prints {@code message} as json or yaml. */
  public void print(MessageOrBuilder message, PrintWriter out) {
    print(json(message), out);
  }

  /**
   * Prints one message of a stream: as json, on one line (JSON Lines, for {@code jq} and
   * friends); as yaml, as a document of its own.
   */
  public void printLine(MessageOrBuilder message, PrintWriter out) {
    if (format == Format.yaml) {
      out.println("---");
      print(json(message), out);
      return;
    }
    try {
      out.println(JsonFormat.printer().omittingInsignificantWhitespace().print(message));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("cannot print " + message.getClass().getSimpleName() + " as JSON: " + e.getMessage(), e);
    }
    out.flush();
  }

  /** Prints several messages as one object with these keys, as json or yaml. */
  public void print(Map<String, ? extends MessageOrBuilder> messages, PrintWriter out) {
    StringBuilder json = new StringBuilder("{");
    messages.forEach((key, message) -> json.append(json.length() > 1 ? ",\n" : "\n").append('"').append(key)
        .append("\": ").append(json(message)));
    print(json.append("\n}").toString(), out);
  }

  private void print(String json, PrintWriter out) {
    if (format == Format.yaml) {
      DumperOptions options = new DumperOptions();
      options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
      options.setIndicatorIndent(2);
      options.setIndentWithIndicator(true);
      // JSON is YAML: read as it is, written in YAML's block style.
      Object tree = new Yaml().load(json);
      out.print(new Yaml(options).dump(tree == null ? new LinkedHashMap<>() : tree));
    } else {
      out.println(json);
    }
    out.flush();
  }

  private static String json(MessageOrBuilder message) {
    try {
      return JsonFormat.printer().print(message);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("cannot print " + message.getClass().getSimpleName() + " as JSON: " + e.getMessage(), e);
    }
  }
}
