package kaon.runtime.chaos;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.SubmitJobRequest;

/**
 * One chaos run: the scenario's job (or, with {@code repeat}, jobs back to back while the faults
 * last) on a cluster, its faults applied on their schedule, everything recorded into a history, and
 * the history judged. The steps: start the cluster; take the job's fault-free result from the
 * cache or train it first; submit; every 200 ms fire the rules that are due and start nodes that
 * exited on their own; every second look at the jobs and the store (on a sampler thread, so that
 * nothing is missed while faults sleep); when the jobs ended (or the time limit passed) undo every
 * fault, read the journals and each node's view of the cluster, check, and write the report.
 *
 * <p>The run's exit code: 0 only when every invariant held, every rule fired and nothing in the
 * run itself went wrong.
 */
public final class ChaosRun {

  /** How a run is done: its seed, report directory, whether jobs repeat until the schedule is over. */
  public record Options(long seed, Path reportDir, boolean repeat, boolean freshBaseline) {}

  private static final long TICK_MILLIS = 200;
  private static final long SUPERVISE_MILLIS = 5_000;

  private final Scenario scenario;
  private final Options options;
  private final ChaosCluster cluster;
  private final BaselineCache baselines;
  private final PrintStream out;
  private final Random random;
  private final List<String> problems = new ArrayList<>();
  // The last status seen of each job (the sampler's thread writes, the run's reads).
  private final Map<String, Job> seen = new ConcurrentHashMap<>();
  private final List<String> submitted = new CopyOnWriteArrayList<>();
  private final ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "chaos-sampler");
    t.setDaemon(true);
    return t;
  });
  private HistoryFile history;
  private HistoryRecorder recorder;
  private ClusterApi api;
  private volatile BaselineCache.Entry baseline;

  public ChaosRun(Scenario scenario, Options options, ChaosCluster cluster, BaselineCache baselines, PrintStream out) {
    this.scenario = scenario;
    this.options = options;
    this.cluster = cluster;
    this.baselines = baselines;
    this.out = out;
    this.random = new Random(options.seed());
  }

  /** Runs the scenario; returns 0 when every invariant held, 1 otherwise. */
  public int run() throws IOException, InterruptedException {
    Files.createDirectories(options.reportDir());
    history = HistoryFile.create(options.reportDir().resolve("history.jsonl"));
    recorder = new HistoryRecorder(history, cluster.store(), System::currentTimeMillis);
    api = new ClusterApi(cluster);
    FaultInjector faults = new FaultInjector(cluster, recorder, random, out, this::coordinatorNode, scenario.overlap(), api,
        this::currentJob, scenario.job().getMinWorkers());
    try {
      out.printf("%s starting the nodes and Cassandra that do not run (logs in %s)%n", Instant.now(),
          Path.of(cluster.logs().get(0)).getParent());
      cluster.startAll();
      sampler.scheduleWithFixedDelay(this::sample, 1, 1, TimeUnit.SECONDS);
      baseline = baseline();
      FaultSchedule schedule = new FaultSchedule(scenario.faults(), random, !scenario.overlap());
      play(schedule, faults);
      out.printf("%s run over; undoing the faults still under way%n", Instant.now());
      faults.finish();
      for (Scenario.FaultRule rule : schedule.neverFired()) {
        problems.add("the fault rule on line " + rule.line() + " never fired: the job ended before its trigger");
      }
      submitted.stream().filter(id -> !ended(id))
          .forEach(id -> problems.add("job " + id + " had not ended when the run gave up"));
      sampler.shutdown();
      sampler.awaitTermination(1, TimeUnit.MINUTES);
      return verdict(faults);
    } finally {
      sampler.shutdownNow();
      api.close();
      recorder.close();
      history.close();
    }
  }

  /**
   * Submits the job and fires the rules as they come due, every {@value #TICK_MILLIS} ms, until the
   * job ended (with {@code repeat}: the next one is submitted until no rule can fire on time any
   * more) or the time limit passed.
   */
  private void play(FaultSchedule schedule, FaultInjector faults) throws IOException, InterruptedException {
    long start = System.nanoTime();
    long deadline = start + scenario.timeLimit().toNanos();
    String current = submit();
    long supervised = 0;
    while (true) {
      Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
      // Without overlap a fault strikes only once the one before it is over (a killed node up
      // again, Cassandra answering), and the next interval of its rule starts then.
      if (scenario.overlap() || faults.idle()) {
        schedule.faultsOver(elapsed);
        for (FaultSchedule.Firing firing : schedule.due(elapsed, recorder.checkpointsCommitted(current))) {
          faults.apply(firing);
        }
      }
      if (System.nanoTime() - supervised > TimeUnit.MILLISECONDS.toNanos(SUPERVISE_MILLIS)) {
        faults.supervise();
        supervised = System.nanoTime();
      }
      if (ended(current)) {
        if (!options.repeat() || schedule.timeOver()) {
          return;
        }
        current = submit();
      }
      if (System.nanoTime() > deadline) {
        problems.add("the time limit (" + scenario.timeLimit().toMinutes() + " min) passed before the job ended");
        return;
      }
      Thread.sleep(TICK_MILLIS);
    }
  }

  /** The job's fault-free result: from the cache, or trained now on the cluster (no fault strikes yet). */
  private BaselineCache.Entry baseline() throws IOException, InterruptedException {
    if (!options.freshBaseline()) {
      Optional<BaselineCache.Entry> cached = baselines.find(scenario.job());
      if (cached.isPresent()) {
        out.printf(Locale.ROOT, "baseline: test accuracy %.4f, from the cache (job %s of commit %s)%n",
            cached.get().testAccuracy(), cached.get().jobId(), cached.get().commit());
        return cached.get();
      }
    }
    String jobId = "chaos-baseline-" + UUID.randomUUID().toString().substring(0, 8);
    out.printf("%s baseline: training %s without faults first%n", Instant.now(), jobId);
    submitRequest(jobId);
    long deadline = System.nanoTime() + scenario.timeLimit().toNanos();
    Optional<Job> job = Optional.empty();
    while (System.nanoTime() < deadline) {
      job = api.job(jobId, 20);
      if (job.isPresent() && ended(job.get().getPhase())) {
        break;
      }
      Thread.sleep(1000);
    }
    if (job.isEmpty() || job.get().getPhase() != JobPhase.SUCCEEDED) {
      throw new IOException("the fault-free baseline job " + jobId + " did not succeed: "
          + job.map(j -> j.getPhase() + " " + j.getMessage()).orElse("no answer"));
    }
    // The world size the baseline trained at throughout, or 0 if it changed (it began before every
    // node's devices had registered, and grew): its model is then not the one a fixed world gives,
    // and no run is held to be bit-identical to it (one such run was, wrongly, on the VMs).
    java.util.IntSummaryStatistics sizes = job.get().getGenerationsList().stream().mapToInt(g -> g.getWorldSize())
        .summaryStatistics();
    int worldSize = sizes.getCount() > 0 && sizes.getMin() == sizes.getMax() ? sizes.getMax() : 0;
    BaselineCache.Entry entry = new BaselineCache.Entry(jobId, job.get().getTestAccuracy(), job.get().getDigest(),
        worldSize, baselines.commit());
    baselines.store(scenario.job(), entry);
    out.printf(Locale.ROOT, "baseline: test accuracy %.4f without faults%n", entry.testAccuracy());
    return entry;
  }

  private String submit() throws IOException, InterruptedException {
    String slug = scenario.slug();
    String jobId = "chaos-" + slug.substring(0, Math.min(24, slug.length())).replaceAll("-$", "") + "-"
        + (submitted.size() + 1) + "-" + UUID.randomUUID().toString().substring(0, 6);
    long sentAt = System.currentTimeMillis(); // before the job can form its first generation
    Job accepted = submitRequest(jobId);
    JobSpecification spec = accepted.getSpec();
    recorder.record(new Observation.JobSubmitted(sentAt, jobId, spec.getEpochs(), spec.getMaxSteps(),
        spec.getGlobalBatch(), spec.getMinWorkers(), spec.getMaxWorkers(), !scenario.expect().succeed(),
        scenario.expect().failureMentions()));
    submitted.add(jobId);
    seen.remove(jobId);
    out.printf("%s submitted %s%n", Instant.now(), jobId);
    return jobId;
  }

  private Job submitRequest(String jobId) throws IOException, InterruptedException {
    SubmitJobRequest request = SubmitJobRequest.newBuilder().setRequestId(jobId).setSpec(scenario.job()).build();
    // Idempotent by request id: a submission that reached a node about to die is sent again.
    for (int attempt = 0; attempt < 60; attempt++) {
      Optional<Job> accepted = api.submit(request, 25);
      if (accepted.isPresent()) {
        return accepted.get();
      }
      Thread.sleep(2000);
    }
    throw new IOException("job " + jobId + " could not be submitted: no node accepted it for 2 min");
  }

  /** One look, on the sampler's thread: every job not yet ended through the API, then the store. */
  private void sample() {
    try {
      for (String jobId : List.copyOf(submitted)) {
        if (!ended(jobId)) {
          // A short wait per node: a hung node must not stall the sampler for long.
          api.job(jobId, 3).ifPresent(job -> {
            recorder.observe(job);
            seen.put(jobId, job);
            if (ended(job.getPhase())) {
              ended(job);
            }
          });
        }
      }
      recorder.pollStore();
    } catch (RuntimeException e) {
      // A look that failed is taken again a second later; the history shows the gap.
      out.println("sampler: " + e);
    }
  }

  private void ended(Job job) {
    out.printf(Locale.ROOT, "%s job %s %s: %s%n", Instant.now(), job.getJobId(), job.getPhase(),
        job.getPhase() == JobPhase.SUCCEEDED ? String.format(Locale.ROOT, "test accuracy %.4f, %d generations",
            job.getTestAccuracy(), job.getGenerationsCount()) : job.getMessage());
    BaselineCache.Entry b = baseline;
    recorder.record(new Observation.Baseline(System.currentTimeMillis(), job.getJobId(), b.testAccuracy(), b.digest(),
        b.worldSize()));
  }

  private boolean ended(String jobId) {
    Job job = seen.get(jobId);
    return job != null && ended(job.getPhase());
  }

  private static boolean ended(JobPhase phase) {
    return phase == JobPhase.SUCCEEDED || phase == JobPhase.FAILED || phase == JobPhase.CANCELLED;
  }

  /** The node the latest job's coordinator runs on now, asked of the cluster (a status seen before may be stale). */
  /** The job submitted last, as a node tells it now. */
  private Optional<Job> currentJob() {
    return submitted.isEmpty() ? Optional.empty() : api.job(submitted.get(submitted.size() - 1), 3);
  }

  private Optional<Integer> coordinatorNode() {
    if (submitted.isEmpty()) {
      return Optional.empty();
    }
    return api.job(submitted.get(submitted.size() - 1), 3).flatMap(job -> cluster.nodeOf(job.getCoordinatorNode()));
  }

  // ------------------------------------------------------------------ verdict

  private int verdict(FaultInjector faults) throws IOException, InterruptedException {
    recorder.finish();
    recorder.record(clusterViews());
    List<Observation> observed = history.observations();
    HistoryChecker.Rules rules = new HistoryChecker.Rules(scenario.expect().accuracyTolerance(),
        HistoryChecker.Rules.standard().stuckLimit());
    Verdict verdict = new HistoryChecker(rules).check(observed);
    List<String> all = new ArrayList<>(problems);
    all.addAll(faults.problems());
    String title = String.format(Locale.ROOT, "Chaos run \"%s\": seed %d, %d faults", scenario.name(), options.seed(),
        faults.injected());
    Path report = ChaosReport.write(options.reportDir(), title, observed, verdict, all);
    out.println("faults: " + faults.counts());
    out.printf("jobs: %d submitted, %d succeeded%n", submitted.size(),
        submitted.stream().filter(id -> seen.get(id) != null && seen.get(id).getPhase() == JobPhase.SUCCEEDED).count());
    ChaosReport.summary(observed, verdict).forEach(out::println);
    all.forEach(p -> out.println("PROBLEM: " + p));
    out.println("report: " + report);
    return verdict.held() && all.isEmpty() ? 0 : 1;
  }

  /** Each node's view of the cluster once every node is up again (waits up to 2 min for them to agree). */
  private Observation.ClusterViews clusterViews() throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    List<List<String>> views = api.views();
    while (System.nanoTime() < deadline
        && !views.stream().allMatch(v -> v.size() == cluster.size() && v.equals(views.get(0)))) {
      Thread.sleep(2000);
      views.clear();
      views.addAll(api.views());
    }
    return new Observation.ClusterViews(System.currentTimeMillis(), cluster.size(), List.copyOf(views));
  }
}
