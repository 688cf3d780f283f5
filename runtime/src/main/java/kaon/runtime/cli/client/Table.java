package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A plain-text table for the terminal: a header row, then one row per item, each column as wide as
 * its widest cell and two spaces between columns. No borders and no trailing spaces, so the output
 * stays easy to read with {@code grep}, {@code awk} and {@code column}.
 */
public final class Table {

  private static final String GAP = "  ";

  private final List<String> headers;
  private final List<List<String>> rows = new ArrayList<>();

  /** A table with these column headers. */
  public Table(String... headers) {
    if (headers.length == 0) {
      throw new IllegalArgumentException("a table needs at least one column");
    }
    this.headers = List.of(headers);
  }

  /**
   * Adds a row; each cell is printed with {@link String#valueOf(Object)}.
   *
   * @throws IllegalArgumentException when the row does not have one cell per column
   */
  public Table row(Object... cells) {
    if (cells.length != headers.size()) {
      throw new IllegalArgumentException(
          "a row needs " + headers.size() + " cells, got " + cells.length + ": " + Arrays.toString(cells));
    }
    rows.add(Arrays.stream(cells).map(String::valueOf).toList());
    return this;
  }

  /** Whether no row was added. */
  public boolean isEmpty() {
    return rows.isEmpty();
  }

  /** Prints the header and the rows, one line each. */
  public void print(PrintWriter out) {
    int[] widths = new int[headers.size()];
    for (List<String> line : lines()) {
      for (int i = 0; i < widths.length; i++) {
        widths[i] = Math.max(widths[i], line.get(i).length());
      }
    }
    for (List<String> line : lines()) {
      StringBuilder text = new StringBuilder();
      for (int i = 0; i < widths.length; i++) {
        String cell = line.get(i);
        text.append(cell);
        if (i < widths.length - 1) {
          text.append(" ".repeat(widths[i] - cell.length())).append(GAP);
        }
      }
      // A short last-but-one cell followed by an empty last cell would leave padding behind.
      out.println(text.toString().stripTrailing());
    }
  }

  private List<List<String>> lines() {
    List<List<String>> lines = new ArrayList<>(rows.size() + 1);
    lines.add(headers);
    lines.addAll(rows);
    return lines;
  }

  /** The printed table, lines separated by the platform's line separator. */
  @Override
  public String toString() {
    StringWriter text = new StringWriter();
    print(new PrintWriter(text));
    return text.toString();
  }
}
