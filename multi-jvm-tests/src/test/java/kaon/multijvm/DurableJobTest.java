package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Durability with real processes and a real Cassandra: a node SIGKILLed in the middle of a job,
 * and Cassandra stopped for 30 seconds in the middle of another.
 */
class DurableJobTest {

  private static final Duration JOB = Duration.ofMinutes(4);

  private static String[] train(String jobId, Path output, String epochs, String maxSteps) {
    return new String[] {"train", "--job-id", jobId, "--workers", "2", "--epochs", epochs, "--max-steps", maxSteps,
        "--checkpoint-every", "100", "--optimizer", "sgd", "--momentum", "0.9", "--threads-per-worker", "1",
        "--output", output.toString()};
  }

  @Test
  void aJobResumesByItselfAfterItsNodeIsKilledAndEndsBitIdentical(@TempDir Path dir) throws Exception {
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    Path reference = dir.resolve("reference.params");
    try (KaonProcess run = KaonProcess.start("resume-reference", train("reference-" + suffix, reference, "3", "1100"))) {
      assertEquals(0, run.awaitExit(JOB));
    }

    Path resumed = dir.resolve("resumed.params");
    String jobId = "crash-" + suffix;
    // The victim and the node after it share journal keyspaces no other test uses.
    String token = UUID.randomUUID().toString();
    java.util.Map<String, String> cluster = KaonProcess.isolated(java.util.Map.of("KAON_TOKEN", token));
    int apiPort = KaonProcess.freePort();
    try (KaonProcess victim = KaonProcess.start("resume-victim", cluster, train(jobId, resumed, "3", "1100"))) {
      Matcher committed = victim.awaitLine(Pattern.compile("job " + jobId + ": checkpoint at step (\\d+) committed"), JOB);
      long step = Long.parseLong(committed.group(1));
      victim.kill();
      assertTrue(step < 1100, "checkpoint " + step);
    }
    assertFalse(Files.exists(resumed), "the killed run must not have finished");

    // A new node, told nothing about the job: it must find and resume it on its own.
    try (KaonProcess node = KaonProcess.start("resume-node", cluster, "node", "--devices", "2", "--threads-per-worker", "1",
        "--api-port", Integer.toString(apiPort))) {
      Matcher resume = node.awaitLine(Pattern.compile("job " + jobId + ": generation 2 of \\d+ ranks resumes at step (\\d+) from checkpoint:"), JOB);
      assertTrue(Long.parseLong(resume.group(1)) >= 100);
      node.awaitLine(Pattern.compile("job " + jobId + " ended: SUCCEEDED"), JOB);
      // The killed run's client never got the model; any client can download it from the node.
      try (KaonProcess download = KaonProcess.start("resume-download", cluster, "job", jobId, "--download", resumed.toString(),
          "--endpoint", "127.0.0.1:" + apiPort)) {
        assertEquals(0, download.awaitExit(JOB));
      }
      node.stop();
    }
    // Same seed, same thread count: the interruption must not change a single bit.
    long mismatch = Files.mismatch(reference, resumed);
    if (mismatch != -1) {
      // Kept for a post-mortem: the logs say how each run went, the files by how much they differ.
      Files.copy(reference, KaonProcess.LOGS.resolve("resume-reference.params"), StandardCopyOption.REPLACE_EXISTING);
      Files.copy(resumed, KaonProcess.LOGS.resolve("resume-resumed.params"), StandardCopyOption.REPLACE_EXISTING);
    }
    assertEquals(-1, mismatch, "resumed parameters differ from the uninterrupted run (" + Files.size(reference)
        + " and " + Files.size(resumed) + " bytes); runs: " + KaonProcess.summary("resume-reference", "resume-victim", "resume-node"));
  }

  @Test
  void trainingGoesOnWhileCassandraIsDownForThirtySeconds(@TempDir Path dir) throws Exception {
    // Long enough (90 MLP epochs, ~110 s) that training still runs when Cassandra comes back (30 s
    // down, then up to 35 s to restart on a loaded 2-core machine; 60 epochs once ran out first), so that
    // the checkpoint that failed during the outage has something to catch up with.
    String jobId = "outage-" + UUID.randomUUID().toString().substring(0, 8);
    try (KaonProcess run = KaonProcess.start("cassandra-outage", train(jobId, dir.resolve("m.params"), "90", "0"))) {
      run.awaitLine(Pattern.compile("^Epoch 2, loss"), JOB);
      Cassandra.stop();
      try {
        run.awaitLine(Pattern.compile("^Degraded: .*(checkpoint writes failing|journal unavailable)"), Duration.ofSeconds(60));
        // Cassandra stays down for 30 s; the job must live through all of it.
        long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < until) {
          assertTrue(run.isAlive(), "kaon train died while Cassandra was down");
          LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
        }
      } finally {
        Cassandra.start();
      }
      assertEquals(0, run.awaitExit(JOB));
      // The checkpoint that failed during the outage was retried until it was written.
      var lines = run.lines();
      int degraded = indexOf(lines, "Degraded: ");
      assertTrue(lines.subList(degraded, lines.size()).stream().anyMatch(l -> l.contains(": checkpoint at step ") && l.contains(" committed")),
          "no checkpoint was committed after the outage");
      long epochs = lines.stream().filter(l -> l.startsWith("Epoch ")).count();
      assertEquals(90, epochs, "every epoch is reported, those finished during the outage too");
      assertTrue(lines.stream().noneMatch(l -> l.startsWith("Generation ")), "training was never restarted");
      // The final accuracy is the last epoch's, also when that epoch waited for the journal.
      String last = lines.stream().filter(l -> l.startsWith("Epoch 90, ")).findFirst().orElseThrow();
      String finalLine = lines.stream().filter(l -> l.startsWith("Test accuracy: ")).findFirst().orElseThrow();
      Matcher val = Pattern.compile("val acc: (0\\.\\d{4})").matcher(last);
      assertTrue(val.find(), last);
      assertTrue(finalLine.startsWith("Test accuracy: " + val.group(1)), finalLine + " vs " + last);
    }
  }

  private static int indexOf(java.util.List<String> lines, String prefix) {
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).startsWith(prefix)) {
        return i;
      }
    }
    throw new AssertionError("no line starts with " + prefix);
  }
}
