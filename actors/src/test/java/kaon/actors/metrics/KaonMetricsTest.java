package kaon.actors.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.DataPointSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** A node's metrics add up per job, and keep the series of a bounded number of jobs. */
class KaonMetricsTest {

  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @Test
  void aRanksStepsAddToItsJobsSeries() {
    KaonMetrics metrics = KaonMetrics.get(testKit.system());
    KaonMetrics.Steps steps = metrics.steps("job-a", "artery");
    steps.step(3_000_000, 2_000_000, 500_000, 64, 400_000);
    steps.step(3_000_000, 2_000_000, 500_000, 64, 400_000);
    assertEquals(128, counter(metrics, "kaon_samples", "job-a"), 0);
    assertEquals(800_000, counter(metrics, "kaon_allreduce_bytes", "job-a"), 0);
    HistogramSnapshot phases = (HistogramSnapshot) family(metrics, "kaon_step_phase_seconds");
    var compute = phases.getDataPoints().stream()
        .filter(p -> p.getLabels().get("job_id").equals("job-a") && p.getLabels().get("phase").equals("compute")).findFirst()
        .orElseThrow();
    assertEquals(2, compute.getCount());
    assertEquals(0.006, compute.getSum(), 1e-9);
  }

  @Test
  void onlyTheNewestJobsKeepTheirSeries() {
    KaonMetrics metrics = KaonMetrics.get(testKit.system());
    for (int j = 0; j < KaonMetrics.JOBS_KEPT + 5; j++) {
      metrics.steps("bounded-" + j, "link").step(1, 1, 1, 1, 4);
      metrics.generationFormed("bounded-" + j, "job submitted");
    }
    Set<String> jobs = jobsOf(family(metrics, "kaon_samples"));
    assertFalse(jobs.contains("bounded-0"), jobs.toString());
    assertTrue(jobs.contains("bounded-" + (KaonMetrics.JOBS_KEPT + 4)), jobs.toString());
    assertTrue(jobs.size() <= KaonMetrics.JOBS_KEPT, jobs.toString());
    assertEquals(jobs, jobsOf(family(metrics, "kaon_resume_seconds")));
  }

  private static double counter(KaonMetrics metrics, String name, String job) {
    CounterSnapshot counter = (CounterSnapshot) family(metrics, name);
    return counter.getDataPoints().stream().filter(p -> p.getLabels().get("job_id").equals(job))
        .mapToDouble(CounterSnapshot.CounterDataPointSnapshot::getValue).sum();
  }

  private static MetricSnapshot family(KaonMetrics metrics, String name) {
    return metrics.registry().scrape().stream().filter(m -> m.getMetadata().getName().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no " + name));
  }

  private static Set<String> jobsOf(MetricSnapshot snapshot) {
    Set<String> jobs = new TreeSet<>();
    List<? extends DataPointSnapshot> points = snapshot.getDataPoints();
    points.forEach(p -> jobs.add(p.getLabels().get("job_id")));
    return jobs;
  }
}
