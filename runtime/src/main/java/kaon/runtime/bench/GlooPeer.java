package kaon.runtime.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The peer {@link AllReduceBench} is compared with: PyTorch's gloo all-reduce between two
 * processes, run by {@code allreduce_gloo.py} of the peer benchmarks with Debian's python3-torch.
 */
final class GlooPeer {

  /** One size as the script reports it: bytes, median seconds per all-reduce, bus bandwidth in GB/s. */
  record Row(long bytes, double medianSeconds, double busbw) {}

  private GlooPeer() {}

  /** Whether the script and a python3 with torch are there; says on stderr why not. */
  static boolean available(Path peers) {
    if (!Files.isRegularFile(peers.resolve("allreduce_gloo.py"))) {
      System.err.println("gloo: " + peers.resolve("allreduce_gloo.py") + " not found (set KAON_PEERS_DIR); Kaon only");
      return false;
    }
    try {
      Process check = new ProcessBuilder("/usr/bin/python3", "-c", "import torch")
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      if (check.waitFor() == 0) {
        return true;
      }
    } catch (IOException e) {
      // No Debian python3 at all: same answer.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    System.err.println("gloo: /usr/bin/python3 has no torch (apt-get install python3-torch); Kaon only");
    return false;
  }

  /** Runs {@code allreduce_gloo.py} for the given byte sizes on {@code port}; its rows by byte count. */
  static Map<Long, Row> run(Path peers, List<Long> sizes, int port) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        "/usr/bin/python3", "allreduce_gloo.py", "--nproc", "2", "--port", String.valueOf(port), "--sizes-mib"));
    for (long bytes : sizes) {
      // Exact in binary, so the script's int(mib * 2**20) // 4 gives our float count back.
      command.add(new BigDecimal(bytes).divide(new BigDecimal(1 << 20)).toPlainString());
    }
    System.err.println("gloo: " + String.join(" ", command));
    Process gloo = new ProcessBuilder(command).directory(peers.toFile()).redirectErrorStream(true).start();
    String result = null;
    try (BufferedReader out = new BufferedReader(new InputStreamReader(gloo.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = out.readLine()) != null; ) {
        if (line.startsWith("RESULT ")) {
          result = line;
        } else {
          System.err.println("  gloo: " + line);
        }
      }
    }
    if (gloo.waitFor() != 0 || result == null) {
      throw new IllegalStateException("allreduce_gloo.py failed (exit " + gloo.exitValue() + ")");
    }
    Map<Long, Row> rows = new LinkedHashMap<>();
    Matcher row = Pattern.compile("\\{[^{}]*\"size_mib\"[^{}]*}").matcher(result);
    while (row.find()) {
      String r = row.group();
      Row g = new Row((long) number(r, "bytes"), number(r, "median_s"), number(r, "busbw_GBps"));
      rows.put(g.bytes(), g);
    }
    return rows;
  }

  private static double number(String json, String key) {
    Matcher m = Pattern.compile("\"" + key + "\":\\s*([-0-9.eE+]+)").matcher(json);
    if (!m.find()) {
      throw new IllegalStateException("no " + key + " in gloo's row " + json);
    }
    return Double.parseDouble(m.group(1));
  }

}
