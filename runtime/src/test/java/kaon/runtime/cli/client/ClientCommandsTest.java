package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.ClusterServicePowerApiHandlerFactory;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServicePowerApiHandlerFactory;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.grpc.javadsl.ServiceHandler;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The commands as the kaon CLI registers them, against {@link StubKaonApi} served over real gRPC
 * on a free local port. What a real node answers is tested with the server.
 */
class ClientCommandsTest {

  @Command(name = "kaon")
  static final class Root {}

  private record Run(int exitCode, String out, String err) {
    List<String> lines() {
      return out.lines().toList();
    }
  }

  private static final StubKaonApi API = new StubKaonApi();
  private static ActorSystem server;
  private static ServerBinding binding;
  @TempDir static Path dir;
  private static Path tokenFile;

  @BeforeAll
  static void serveTheStub() throws Exception {
    server = ActorSystem.create("stub-kaon", ConfigFactory.parseString(
            "pekko.actor.provider = local\npekko.remote.artery.enabled = off\npekko.loglevel = WARNING\n"
                + "pekko.http.server.enable-http2 = on")
        .withFallback(ConfigFactory.load()));
    binding = Http.get(server).newServerAt("127.0.0.1", 0)
        .bind(ServiceHandler.concatOrNotFound(
            JobServicePowerApiHandlerFactory.create(API, server),
            ClusterServicePowerApiHandlerFactory.create(API, server)))
        .toCompletableFuture().get(30, TimeUnit.SECONDS);
    tokenFile = Files.writeString(dir.resolve("token"), StubKaonApi.TOKEN + "\n");
  }

  @AfterAll
  static void stopTheStub() throws Exception {
    binding.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
    server.terminate();
    server.getWhenTerminated().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static Run kaon(String... args) {
    return kaon(new JobsCommand(), args);
  }

  /** The CLI with {@code jobs} as given (one with its own clock, say). */
  private static Run kaon(JobsCommand jobs, String... args) {
    CommandLine cli = new CommandLine(new Root());
    ClientCommands.COMMANDS.forEach(c -> cli.addSubcommand(c == JobsCommand.class ? jobs : c));
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    return new Run(cli.execute(args), out.toString(), err.toString());
  }

  /** A command against the stub, with its token. */
  private static Run stub(String... args) {
    return stub(new JobsCommand(), args);
  }

  private static Run stub(JobsCommand jobs, String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--endpoint", "127.0.0.1:" + binding.localAddress().getPort(), "--token-file", tokenFile.toString()));
    return kaon(jobs, all.toArray(String[]::new));
  }

  /** {@code kaon jobs} as seen at {@code now}. */
  private static JobsCommand jobsAt(java.time.Instant now) {
    JobsCommand jobs = new JobsCommand();
    jobs.clock = java.time.Clock.fixed(now, java.time.ZoneOffset.UTC);
    return jobs;
  }

  @Test
  void everyCommandRegistersAndDocumentsItsExitCodes() {
    for (String command : new String[] {"submit", "jobs", "job", "watch", "logs", "cancel", "scale", "cluster"}) {
      Run help = kaon(command, "--help");
      assertEquals(0, help.exitCode(), command + ": " + help.err());
      assertTrue(help.out().contains("--endpoint=HOST:PORT"), command + ": " + help.out());
      assertTrue(help.out().contains("Exit codes:"), command + ": " + help.out());
    }
  }

  @Test
  void watchAsJsonPrintsEachEventOnItsLineAndStillExitsWithTheOutcome() throws Exception {
    Run run = stub("watch", "job-1", "-o", "json");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(5, run.lines().size(), run.out());
    List<kaon.protocol.v1.JobEvent.EventCase> cases = new ArrayList<>();
    for (String line : run.lines()) {
      var event = kaon.protocol.v1.JobEvent.newBuilder();
      com.google.protobuf.util.JsonFormat.parser().merge(line, event);
      cases.add(event.getEventCase());
    }
    assertEquals(kaon.protocol.v1.JobEvent.EventCase.STATUS, cases.get(4), cases.toString());
    assertEquals(kaon.protocol.v1.JobEvent.EventCase.EPOCH, cases.get(2), cases.toString());
  }

  @Test
  void jobPlotDrawsTheJobsEpochsToAPng() throws Exception {
    Path png = dir.resolve("job-1.png");
    Run run = stub("job", "job-1", "--plot", png.toString());
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of("Plotted 2 epochs of job job-1 to " + png), run.lines());
    assertEquals(JobPlot.WIDTH, javax.imageio.ImageIO.read(png.toFile()).getWidth());
    assertEquals(ApiErrors.USAGE, stub("job", "job-1", "--plot", png.toString(), "--download", "x").exitCode());
  }

  @Test
  void logsPrintsTheJobsLinesFromEveryNodeInOrderOrAsJsonLines() throws Exception {
    Run run = stub("logs", "job-1");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(2, run.lines().size(), run.out());
    assertTrue(run.lines().get(0).matches("\\d{4}-\\d\\d-\\d\\d [0-9:.]{12} INFO  10\\.0\\.0\\.1:25520 job job-1: generation 1 .*"),
        run.lines().get(0));
    assertTrue(run.lines().get(1).contains(" WARN  10.0.0.2:25520 job job-1: checkpoint at step 200"), run.lines().get(1));

    Run last = stub("logs", "job-1", "--tail", "1", "-o", "json");
    assertEquals(0, last.exitCode(), last.err());
    assertEquals(1, last.lines().size(), last.out());
    var parsed = kaon.protocol.v1.LogLine.newBuilder();
    com.google.protobuf.util.JsonFormat.parser().merge(last.lines().get(0), parsed);
    assertEquals("WARN", parsed.getLevel());

    Run missing = stub("logs", "job-9");
    assertEquals(1, missing.exitCode(), missing.err());
    assertTrue(missing.err().contains("job-9 does not exist"), missing.err());
    assertEquals(ApiErrors.USAGE, stub("logs", "job-1", "--tail", "-1").exitCode());
  }

  @Test
  void submitsWithARequestIdAndWatchesTheJobToItsEnd() {
    Run run = stub("submit", "--task", "fashion-mnist-mlp", "--workers", "2", "--watch");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of(
        "Submitted job job-1 (fashion-mnist-mlp, 2..2 workers)",
        JobEventPrinter.epochLine(StubKaonApi.epoch(1)),
        JobEventPrinter.epochLine(StubKaonApi.epoch(2)),
        "Test accuracy: 0.8100 after 2 epochs (936 steps); job job-1 succeeded; parameters sha256 d1g3st"),
        run.lines());
    var request = API.submitted.get(API.submitted.size() - 1);
    assertFalse(request.getRequestId().isEmpty(), "a request id makes retries safe");
    assertEquals(2, request.getSpec().getMaxWorkers());
  }

  @Test
  void theServersVerdictOnASpecIsAUsageError() {
    Run run = stub("submit", "--task", "bad");
    assertEquals(ApiErrors.USAGE, run.exitCode());
    assertEquals("kaon: invalid job spec: task: unknown task 'bad'", run.err().strip());
  }

  @Test
  void aBadSpecFailsBeforeConnecting() {
    Run run = kaon("submit", "--epochs", "3", "--endpoint", "127.0.0.1:1");
    assertEquals(ApiErrors.USAGE, run.exitCode());
    assertEquals("kaon: no task: give --task NAME or a spec FILE (see 'kaon tasks')", run.err().strip());
  }

  @Test
  void listsJobsAsATable() {
    Run run = stub(jobsAt(StubKaonApi.SUBMITTED.plusSeconds(2 * 3600 + 5 * 60 + 30)), "jobs");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of(
        "JOB    PHASE      TASK               WORKERS    EPOCHS  TEST ACC  AGE    DURATION  HEALTH",
        "job-1  succeeded  fashion-mnist-mlp  2          2/2     0.8100    2h05m  1m30s     -",
        "job-2  running    fashion-mnist-mlp  2 of 1..4  1/2     0.8000    2h05m  2h05m     journal down"), run.lines());
  }

  @Test
  void listsOnlyThePhasesAskedForAndAtMostTheLimit() {
    API.listed.clear();
    Run run = stub("jobs", "--phase", "Running", "--phase", "succeeded,FAILED", "--limit", "5");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of(kaon.protocol.v1.ListJobsRequest.newBuilder().addPhases(JobPhase.RUNNING)
        .addPhases(JobPhase.SUCCEEDED).addPhases(JobPhase.FAILED).setPageSize(5).build()), API.listed);
  }

  @Test
  void aLimitShowsTheNewestAndSaysMoreMatch() throws Exception {
    Run run = stub(jobsAt(StubKaonApi.SUBMITTED.plusSeconds(100)), "jobs", "--limit", "1");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(2, run.lines().size(), run.out());
    assertTrue(run.lines().get(1).startsWith("job-1 "), run.out());
    assertEquals("kaon: these are the 1 newest; more jobs match (raise --limit, or leave it out for all)", run.err().strip());
    Run json = stub("jobs", "--limit", "1", "-o", "json");
    kaon.protocol.v1.ListJobsResponse.Builder list = kaon.protocol.v1.ListJobsResponse.newBuilder();
    com.google.protobuf.util.JsonFormat.parser().merge(json.out(), list);
    assertEquals(List.of("job-1"), list.getJobsList().stream().map(kaon.protocol.v1.Job::getJobId).toList());
    assertEquals("after-job-1", list.getNextPageToken(), "more jobs match");
  }

  @Test
  void withoutALimitTheJobsAreAskedForInTheLargestPages() {
    API.listed.clear();
    Run run = stub("jobs", "-o", "json");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(1, API.listed.size(), "one page held them all");
    assertEquals(JobsCommand.MAX_PAGE_SIZE, API.listed.get(0).getPageSize());
  }

  @Test
  void aPhaseThatIsNoneIsAUsageErrorNamingThePhases() {
    Run run = kaon("jobs", "--phase", "runing", "--endpoint", "127.0.0.1:1");
    assertEquals(ApiErrors.USAGE, run.exitCode());
    assertTrue(run.err().contains("'runing' is not a phase; the phases are starting, running, succeeded, failed, cancelled"),
        run.err());
  }

  @Test
  void aLimitBelowOneIsAUsageErrorBeforeConnecting() {
    Run run = kaon("jobs", "--limit", "0", "--endpoint", "127.0.0.1:1");
    assertEquals(ApiErrors.USAGE, run.exitCode());
    assertTrue(run.err().contains("--limit must be at least 1, was 0"), run.err());
  }

  @Test
  void readCommandsPrintTheApisMessagesAsJsonOrYamlForScripts() throws Exception {
    Run jobs = stub("jobs", "-o", "json");
    assertEquals(0, jobs.exitCode(), jobs.err());
    var parsed = com.google.protobuf.util.JsonFormat.parser();
    kaon.protocol.v1.ListJobsResponse.Builder list = kaon.protocol.v1.ListJobsResponse.newBuilder();
    parsed.merge(jobs.out(), list);
    assertEquals(List.of("job-1", "job-2"), list.getJobsList().stream().map(kaon.protocol.v1.Job::getJobId).toList());
    Run job = stub("job", "job-1", "--output", "json");
    kaon.protocol.v1.Job.Builder one = kaon.protocol.v1.Job.newBuilder();
    parsed.merge(job.out(), one);
    assertEquals("job-1", one.getJobId());
    assertEquals(kaon.protocol.v1.JobPhase.SUCCEEDED, one.getPhase());
    Run yaml = stub("job", "job-1", "-o", "yaml");
    assertEquals(0, yaml.exitCode(), yaml.err());
    assertTrue(yaml.lines().contains("jobId: job-1"), yaml.out());
    assertTrue(yaml.lines().contains("phase: SUCCEEDED"), yaml.out());
    Run cluster = stub("cluster", "-o", "json");
    assertEquals(0, cluster.exitCode(), cluster.err());
    var tree = new com.fasterxml.jackson.databind.ObjectMapper().readTree(cluster.out());
    assertTrue(tree.has("members") && tree.has("devices"), cluster.out());
    Run wrong = stub("jobs", "-o", "xml");
    assertEquals(2, wrong.exitCode());
    assertTrue(wrong.err().contains("table, json, yaml"), wrong.err());
  }

  @Test
  void showsOneJobInDetail() {
    Run run = stub("job", "job-1");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of(
        "Job job-1: succeeded",
        "  task         fashion-mnist-mlp",
        "  workers      2",
        "  recipe       2 epochs, global batch 128, sgd, lr 0.1, seed 42, checkpoint every 200 steps",
        "  generation   2, state from memory:job-1-worker-0",
        "  steps        936",
        "  checkpoint   ck-4 at step 800 (epoch 2, 1,234,567 bytes)",
        "  health       ok",
        "  created      2025-11-24T16:00:00",
        "  ended        2025-11-24T16:01:30",
        "  coordinator  pekko://kaon@10.0.0.7:25520",
        "  generations:",
        "    " + JobCommand.generationLine(StubKaonApi.job(JobPhase.SUCCEEDED).getGenerations(0)),
        "    " + JobCommand.generationLine(StubKaonApi.job(JobPhase.SUCCEEDED).getGenerations(1)),
        "  ranks:",
        "    0: worker 0 on cpu:0 of pekko://kaon@10.0.0.7:25520, chunks to the next rank over link (a tensor link to 10.0.0.8:7355)",
        "    1: worker 2 on cpu:0 of pekko://kaon@10.0.0.8:25520",
        JobEventPrinter.epochLine(StubKaonApi.epoch(1)),
        JobEventPrinter.epochLine(StubKaonApi.epoch(2)),
        JobEventPrinter.outcomeLine(StubKaonApi.job(JobPhase.SUCCEEDED))), run.lines());
  }

  @Test
  void aGenerationLineSaysWhenWhyAndFromWhere() {
    String line = JobCommand.generationLine(StubKaonApi.generation(2, 512, "rank 1 failed: all-reduce missed its deadline",
        "memory:job-1-worker-0", 1_764_000_042_000L));
    String at = java.time.Instant.ofEpochMilli(1_764_000_042_000L).atZone(java.time.ZoneId.systemDefault()).toLocalTime().toString();
    assertEquals("2: " + at + " 2 ranks from step 512, state from memory:job-1-worker-0 (rank 1 failed: all-reduce missed its deadline)",
        line);
    assertEquals("1: 2 ranks from step 0, state from init (job submitted)",
        JobCommand.generationLine(StubKaonApi.generation(1, 0, "job submitted", "init", 0)));
  }

  @Test
  void anUnknownJobIsExitCode1WithTheServersWords() {
    Run run = stub("job", "job-9");
    assertEquals(ApiErrors.JOB_FAILED, run.exitCode());
    assertEquals("kaon: no job job-9", run.err().strip());
  }

  @Test
  void downloadsAModelAndChecksItsSha256() throws IOException {
    Path file = Files.write(dir.resolve("job-1.params"), new byte[] {1, 2});
    Run run = stub("job", "job-1", "--download", file.toString());
    assertEquals(0, run.exitCode(), run.err());
    assertArrayEquals(StubKaonApi.MODEL, Files.readAllBytes(file), "the old file is replaced by the model");
    assertEquals(List.of("Saved the model of job job-1 to " + file + " (16,000 bytes, sha256 "
        + StubKaonApi.sha256(StubKaonApi.MODEL) + ")"), run.lines());
    assertEquals(List.of(), partFiles());
  }

  @Test
  void aModelThatFailsItsSha256IsNotSavedAndIsExitCode3() throws IOException {
    Path file = Files.write(dir.resolve("damaged.params"), new byte[] {1, 2});
    Run run = stub("job", "job-damaged", "--download", file.toString());
    assertEquals(ApiErrors.ENVIRONMENT, run.exitCode(), run.err());
    assertTrue(run.err().startsWith("kaon: the model of job job-damaged failed its sha256 check (received "), run.err());
    assertTrue(run.err().strip().endsWith("nothing was saved to " + file), run.err());
    assertFalse(run.err().contains("\tat "), "stack trace in: " + run.err());
    assertArrayEquals(new byte[] {1, 2}, Files.readAllBytes(file), "the file was left as it was");
    assertEquals(List.of(), partFiles(), "the temporary file was deleted");
  }

  @Test
  void theModelOfAJobThatHasNotSucceededIsExitCode1() throws IOException {
    Path file = dir.resolve("job-2.params");
    Run run = stub("job", "job-2", "--download", file.toString());
    assertEquals(ApiErrors.JOB_FAILED, run.exitCode(), run.err());
    assertEquals("kaon: job job-2 is RUNNING", run.err().strip());
    assertFalse(Files.exists(file));
    assertEquals(List.of(), partFiles());
  }

  private static List<Path> partFiles() throws IOException {
    try (var files = Files.list(dir)) {
      return files.filter(f -> f.getFileName().toString().endsWith(".part")).toList();
    }
  }

  @Test
  void cancelAndScalePrintTheJobInOneLine() {
    Run cancel = stub("cancel", "job-1");
    assertEquals(0, cancel.exitCode(), cancel.err());
    assertEquals("Job job-1: cancelled, fashion-mnist-mlp, 2 workers, 0/2 epochs: cancelled by a user",
        cancel.out().strip());
    Run scale = stub("scale", "job-1", "--min", "1", "--max", "3");
    assertEquals(0, scale.exitCode(), scale.err());
    assertEquals("Job job-1: running, fashion-mnist-mlp, 2 of 1..3 workers, 0/2 epochs", scale.out().strip());
  }

  @Test
  void showsMembersAndDevices() {
    Run run = stub("cluster");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(List.of(
        "ADDRESS                      STATUS  ROLES               REACHABLE",
        "pekko://kaon@10.0.0.5:25520  Up      worker,coordinator  yes",
        "",
        "NODE            DEVICE  KIND  THREADS  OWNER",
        "10.0.0.5:25520  cpu-0   cpu   1        job-1/0",
        "10.0.0.5:25520  cpu-1   cpu   1        -"), run.lines());
  }

  @Test
  void aWatchThatStopsBeforeTheJobEndsIsExitCode3() {
    Run run = stub("watch", "job-2");
    assertEquals(ApiErrors.ENVIRONMENT, run.exitCode());
    assertEquals("kaon: the watch of job job-2 ended before the job did; run kaon watch job-2 again",
        run.err().strip());
  }

  @Test
  void aRefusedTokenIsExitCode3() throws IOException {
    Path wrong = Files.writeString(dir.resolve("wrong-token"), "not-it");
    Run run = kaon("jobs", "--endpoint", "127.0.0.1:" + binding.localAddress().getPort(), "--token-file",
        wrong.toString());
    assertEquals(ApiErrors.ENVIRONMENT, run.exitCode());
    assertTrue(run.err().startsWith("kaon: the server at 127.0.0.1:" + binding.localAddress().getPort()
        + " refused the token"), run.err());
    Run watch = kaon("watch", "job-1", "--endpoint", "127.0.0.1:" + binding.localAddress().getPort(),
        "--token-file", wrong.toString());
    assertEquals(ApiErrors.ENVIRONMENT, watch.exitCode(), watch.err());
  }

  @Test
  void anUnreachableNodeIsOneLineAndExitCode3() throws IOException {
    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    Run run = kaon("jobs", "--endpoint", "127.0.0.1:" + port);
    assertEquals(ApiErrors.ENVIRONMENT, run.exitCode(), run.err());
    assertEquals("kaon: cannot reach Kaon at 127.0.0.1:" + port
        + " (is `kaon node` running? set --endpoint or KAON_ENDPOINT)", run.err().strip());
    assertFalse(run.err().contains("\tat "), run.err());
  }

  @Test
  void aMalformedEndpointIsAUsageError() {
    Run run = kaon("cluster", "--endpoint", "nowhere");
    assertEquals(ApiErrors.USAGE, run.exitCode());
    assertTrue(run.err().contains("--endpoint: expected HOST:PORT, got \"nowhere\""), run.err());
  }
}
