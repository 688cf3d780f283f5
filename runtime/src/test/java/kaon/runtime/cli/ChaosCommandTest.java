package kaon.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ChaosCommandTest {

  @TempDir
  Path dir;

  private record Run(int code, String out, String err) {}

  private static Run kaon(String... args) {
    CommandLine cli = KaonCli.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  /** A one-job, fault-free run, as the recorder writes it; {@code digest} is the job's model. */
  private Path history(String digest) throws IOException {
    Path file = dir.resolve("history.jsonl");
    Files.writeString(file, String.join("\n",
        "{\"type\":\"job-submitted\",\"atMillis\":0,\"jobId\":\"j\",\"epochs\":1,\"maxSteps\":0,\"globalBatch\":128,"
            + "\"minWorkers\":1,\"maxWorkers\":1,\"expectFailure\":false,\"failureMentions\":\"\"}",
        "{\"type\":\"generation\",\"atMillis\":10,\"jobId\":\"j\",\"generation\":1,\"worldSize\":1,\"resumeStep\":0,"
            + "\"stateSource\":\"init\",\"reason\":\"job submitted\",\"workers\":[0]}",
        "{\"type\":\"steps\",\"atMillis\":20,\"jobId\":\"j\",\"generation\":1,\"step\":468,\"stepsPerEpoch\":468,"
            + "\"worldSize\":1,\"meanLoss\":0.6,\"health\":\"\"}",
        "{\"type\":\"epoch\",\"atMillis\":30,\"jobId\":\"j\",\"epoch\":1,\"stepsDone\":468,\"samples\":59904,"
            + "\"eachSampleOnce\":true,\"worldSize\":1,\"meanLoss\":0.6,\"testAccuracy\":0.8}",
        "{\"type\":\"job-ended\",\"atMillis\":40,\"jobId\":\"j\",\"phase\":\"SUCCEEDED\",\"message\":\"\",\"stepsDone\":468,"
            + "\"testAccuracy\":0.8,\"digest\":\"" + digest + "\"}",
        "{\"type\":\"baseline\",\"atMillis\":50,\"jobId\":\"j\",\"testAccuracy\":0.8,\"digest\":\"d\",\"worldSize\":1}",
        "{\"type\":\"journal\",\"atMillis\":60,\"jobId\":\"j\",\"runs\":[{\"writer\":\"w\",\"first\":1,\"last\":7}],"
            + "\"missing\":[]}",
        "{\"type\":\"cluster\",\"atMillis\":60,\"expectedNodes\":1,\"views\":[[\"n1\"]]}") + "\n");
    return file;
  }

  @Test
  void aHistoryThatHoldsEveryInvariantExitsZeroWithItsReport() throws IOException {
    Run run = kaon("chaos", "check", history("d").toString());
    assertEquals(0, run.code(), run.err());
    assertTrue(run.out().contains("every invariant held"), run.out());
    assertTrue(Files.readString(dir.resolve("report.md")).contains("**Every invariant held.**"));
    assertTrue(Files.readString(dir.resolve("timeline.svg")).startsWith("<svg"));
  }

  @Test
  void aViolationExitsOneAndSaysWhat() throws IOException {
    Run run = kaon("chaos", "check", history("other").toString(), "--report", dir.resolve("out").toString());
    assertEquals(1, run.code(), run.err());
    assertTrue(run.out().contains("VIOLATED: accuracy within the tolerance"), run.out());
    assertTrue(run.out().contains("differs from the fault-free d"), run.out());
    assertTrue(Files.exists(dir.resolve("out/report.md")));
  }

  @Test
  void aMissingOrBrokenHistoryIsNamedWithoutAStackTrace() throws IOException {
    Run missing = kaon("chaos", "check", dir.resolve("nope.jsonl").toString());
    assertEquals(3, missing.code());
    assertEquals("kaon chaos check: " + dir.resolve("nope.jsonl") + ": no such file\n", missing.err());
    Path broken = dir.resolve("broken.jsonl");
    Files.writeString(broken, "{\"type\":\"nonsense\"}\n");
    Run bad = kaon("chaos", "check", broken.toString());
    assertEquals(3, bad.code());
    assertTrue(bad.err().startsWith("kaon chaos check: " + broken + ":1: not an observation"), bad.err());
    assertTrue(!bad.err().contains("\tat "), bad.err());
  }

  @Test
  void aScenarioWithMistakesIsRefusedBeforeAnythingStartsNamingEachOne() throws IOException {
    Path good = dir.resolve("good.yaml");
    Files.writeString(good, "name: g\njob:\n  task: fashion-mnist-mlp\nfaults:\n  - at: 5s\n    kill: any\n");
    Path bad = dir.resolve("bad.yaml");
    Files.writeString(bad, "name: b\njob:\n  task: fashion-mnist-mlp\nfaults:\n  - at: soon\n    kill: node 9\n");
    Run run = kaon("chaos", "run", good.toString(), bad.toString(), "--report", dir.resolve("r").toString());
    assertEquals(2, run.code(), run.err());
    assertTrue(run.err().contains(bad + ":5: at: expected a time"), run.err());
    assertTrue(run.err().contains(bad + ":6: kill: expected node N (1 to 3)"), run.err());
    assertTrue(!run.err().contains(good.toString()), run.err());
    assertTrue(!Files.exists(dir.resolve("r")), "nothing ran, nothing was written");
  }

  @Test
  void randomFaultsNameEachBadOption() {
    Run run = kaon("chaos", "random", "--faults", "kill,partition,bogus", "--every", "40-20s", "--for", "ten");
    assertEquals(2, run.code(), run.err());
    assertTrue(run.err().contains("--every: expected a time (30s) or a range (20-40s), got \"40-20s\""), run.err());
    assertTrue(run.err().contains("--for: expected a time such as 10m, got \"ten\""), run.err());
    assertTrue(run.err().contains("--faults: unknown fault \"bogus\""), run.err());
    assertTrue(!run.err().contains("unknown fault \"partition\""), "partition is a fault, on the VMs: " + run.err());
    assertTrue(!run.err().contains("Exception"), run.err());
  }

  @Test
  void networkFaultsOnTheLocalClusterAndAnUnknownClusterAreRefusedBeforeAnythingStarts() throws IOException {
    Run random = kaon("chaos", "random", "--faults", "kill,partition", "--for", "1m", "--report", dir.resolve("r1").toString());
    assertEquals(2, random.code(), random.err());
    assertTrue(random.err().contains("network faults need the namespace VMs (--cluster vms)"), random.err());
    Path lossy = dir.resolve("lossy.yaml");
    Files.writeString(lossy, "name: l\njob:\n  task: fashion-mnist-mlp\nfaults:\n  - at: 5s\n    packet-loss: any\n"
        + "    percent: 5\n");
    Run run = kaon("chaos", "run", lossy.toString(), "--report", dir.resolve("r2").toString());
    assertEquals(2, run.code(), run.err());
    assertTrue(run.err().contains("line 5: network faults need the namespace VMs (--cluster vms)"), run.err());
    Run mars = kaon("chaos", "run", lossy.toString(), "--cluster", "mars", "--report", dir.resolve("r3").toString());
    assertEquals(2, mars.code(), mars.err());
    assertTrue(mars.err().contains("--cluster: expected local or vms, got \"mars\""), mars.err());
    for (String r : List.of("r1", "r2", "r3")) {
      assertTrue(!Files.exists(dir.resolve(r)), "nothing ran, nothing was written");
    }
  }
}
