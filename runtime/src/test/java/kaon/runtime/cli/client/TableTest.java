package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class TableTest {

  private static List<String> lines(Table table) {
    return table.toString().lines().toList();
  }

  @Test
  void sizesEachColumnToItsWidestCell() {
    Table table = new Table("JOB", "PHASE", "TEST ACC")
        .row("job-3a1243a1", "running", 0.8695)
        .row("j2", "succeeded", "-");
    assertEquals(List.of(
        "JOB           PHASE      TEST ACC",
        "job-3a1243a1  running    0.8695",
        "j2            succeeded  -"), lines(table));
  }

  @Test
  void leavesNoTrailingSpacesWhenTheLastCellsAreShortOrEmpty() {
    Table table = new Table("NAME", "OWNER").row("a-long-name", "").row("b", "w");
    for (String line : lines(table)) {
      assertFalse(line.endsWith(" "), "trailing space in '" + line + "'");
    }
    assertEquals("a-long-name", lines(table).get(1));
  }

  @Test
  void printsOnlyTheHeaderWithoutRows() {
    Table table = new Table("ADDRESS", "STATUS");
    assertTrue(table.isEmpty());
    assertEquals(List.of("ADDRESS  STATUS"), lines(table));
  }

  @Test
  void rejectsARowWithTheWrongNumberOfCells() {
    Table table = new Table("A", "B");
    assertThrows(IllegalArgumentException.class, () -> table.row("only one"));
  }
}
