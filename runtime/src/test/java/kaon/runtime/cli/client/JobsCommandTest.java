package kaon.runtime.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.Timestamps;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code kaon jobs} without a server: its columns of time, its options, and how it pages. */
class JobsCommandTest {

  private static final Instant NOW = Instant.parse("2026-12-05T12:00:00Z");

  private static Job job(JobPhase phase, Duration createdAgo, Duration startedAgo, Duration endedAgo) {
    Job.Builder job = Job.newBuilder().setJobId("j").setPhase(phase);
    if (createdAgo != null) {
      job.setCreatedAt(Timestamps.fromMillis(NOW.minus(createdAgo).toEpochMilli()));
    }
    if (startedAgo != null) {
      job.setStartedAt(Timestamps.fromMillis(NOW.minus(startedAgo).toEpochMilli()));
    }
    if (endedAgo != null) {
      job.setEndedAt(Timestamps.fromMillis(NOW.minus(endedAgo).toEpochMilli()));
    }
    return job.build();
  }

  @Test
  void aSpanIsWrittenInItsTwoLargestUnits() {
    assertEquals("0s", JobsCommand.span(Duration.ZERO));
    assertEquals("59s", JobsCommand.span(Duration.ofMillis(59_999)));
    assertEquals("1m00s", JobsCommand.span(Duration.ofSeconds(60)));
    assertEquals("3m12s", JobsCommand.span(Duration.ofSeconds(3 * 60 + 12)));
    assertEquals("59m59s", JobsCommand.span(Duration.ofSeconds(3599)));
    assertEquals("2h05m", JobsCommand.span(Duration.ofMinutes(125).plusSeconds(59)));
    assertEquals("23h59m", JobsCommand.span(Duration.ofSeconds(86_399)));
    assertEquals("1d00h", JobsCommand.span(Duration.ofDays(1)));
    assertEquals("4d03h", JobsCommand.span(Duration.ofDays(4).plusHours(3).plusMinutes(59)));
  }

  @Test
  void fromAWeekOnASpanIsWholeDays() {
    assertEquals("7d", JobsCommand.span(Duration.ofDays(7)));
    assertEquals("400d", JobsCommand.span(Duration.ofDays(400).plusHours(23)));
  }

  @Test
  void aSpanThatEndsBeforeItStartsIsNone() {
    // The client's clock behind the server's: a job just submitted is not -2s old.
    assertEquals("0s", JobsCommand.span(Duration.ofSeconds(-2)));
  }

  @Test
  void theAgeIsSinceTheSubmission() {
    assertEquals("3m12s", JobsCommand.age(job(JobPhase.RUNNING, Duration.ofSeconds(192), null, null), NOW));
    assertEquals("-", JobsCommand.age(job(JobPhase.RUNNING, null, null, null), NOW));
  }

  @Test
  void aRunningJobsDurationRunsToNow() {
    assertEquals("2h05m", JobsCommand.duration(job(JobPhase.RUNNING, Duration.ofHours(3), Duration.ofMinutes(125), null), NOW));
    assertEquals("10s", JobsCommand.duration(job(JobPhase.STARTING, Duration.ofSeconds(10), Duration.ofSeconds(10), null), NOW));
  }

  @Test
  void anEndedJobsDurationRunsToItsEnd() {
    Job job = job(JobPhase.SUCCEEDED, Duration.ofDays(2), Duration.ofDays(2), Duration.ofDays(2).minusSeconds(90));
    assertEquals("1m30s", JobsCommand.duration(job, NOW));
    assertEquals("2d00h", JobsCommand.age(job, NOW));
  }

  @Test
  void aDurationWithoutItsTimesIsNotKnown() {
    assertEquals("-", JobsCommand.duration(job(JobPhase.RUNNING, Duration.ofHours(1), null, null), NOW));
    // Ended before Kaon recorded ends: not "until now", which would grow forever.
    assertEquals("-", JobsCommand.duration(job(JobPhase.FAILED, Duration.ofHours(1), Duration.ofHours(1), null), NOW));
  }

  private static JobsCommand parsed(String... args) {
    JobsCommand command = new JobsCommand();
    new CommandLine(command).parseArgs(args);
    return command;
  }

  @Test
  void phasesAreNamedInAnyCaseRepeatedOrWithCommas() {
    assertEquals(List.of(JobPhase.RUNNING, JobPhase.SUCCEEDED, JobPhase.CANCELLED),
        parsed("--phase", "Running", "--phase", "succeeded,CANCELLED").phases);
    assertEquals(List.of(), parsed().phases, "none: every phase");
  }

  @Test
  void aPhaseThatIsNoneNamesThePhases() {
    CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class, () -> parsed("--phase", "done"));
    assertTrue(e.getMessage().contains("'done' is not a phase; the phases are starting, running, succeeded, failed, cancelled"),
        e.getMessage());
    assertThrows(CommandLine.ParameterException.class, () -> parsed("--phase", "job_phase_unspecified"));
  }

  @Test
  void theLimitIsANumber() {
    assertEquals(20, parsed("--limit", "20").limit);
    assertNull(parsed().limit, "no limit: every job");
    assertThrows(CommandLine.ParameterException.class, () -> parsed("--limit", "all"));
  }

  /** A server over {@code jobs} (newest first already) that pages as the API does; it records each request. */
  private static final class Pages implements JobsCommand.ListCall {
    final List<Job> jobs;
    final List<ListJobsRequest> asked = new ArrayList<>();

    Pages(int count) {
      jobs = IntStream.range(0, count).mapToObj(i -> Job.newBuilder().setJobId("job-" + i).build()).toList();
    }

    @Override
    public ListJobsResponse list(ListJobsRequest request) {
      asked.add(request);
      int from = request.getPageToken().isEmpty() ? 0 : Integer.parseInt(request.getPageToken());
      int to = Math.min(jobs.size(), from + (request.getPageSize() == 0 ? 100 : request.getPageSize()));
      return ListJobsResponse.newBuilder().addAllJobs(jobs.subList(from, to))
          .setNextPageToken(to < jobs.size() ? Integer.toString(to) : "").build();
    }
  }

  @Test
  void withoutALimitEveryPageIsAskedForInTheLargestPages() throws Exception {
    Pages server = new Pages(2500);
    ListJobsResponse all = JobsCommand.collect(List.of(JobPhase.RUNNING), null, server);
    assertEquals(server.jobs, all.getJobsList());
    assertEquals("", all.getNextPageToken());
    assertEquals(List.of("", "1000", "2000"), server.asked.stream().map(ListJobsRequest::getPageToken).toList());
    assertTrue(server.asked.stream().allMatch(r -> r.getPageSize() == 1000 && r.getPhasesList().equals(List.of(JobPhase.RUNNING))));
  }

  @Test
  void aLimitAsksForNoMoreThanItShowsAndKeepsTheTokenForTheRest() throws Exception {
    Pages server = new Pages(50);
    ListJobsResponse newest = JobsCommand.collect(List.of(), 20, server);
    assertEquals(server.jobs.subList(0, 20), newest.getJobsList());
    assertEquals("20", newest.getNextPageToken(), "more follow");
    assertEquals(1, server.asked.size());
    assertEquals(20, server.asked.get(0).getPageSize());
  }

  @Test
  void aLimitAboveAPageIsReachedPageByPage() throws Exception {
    Pages server = new Pages(3000);
    ListJobsResponse newest = JobsCommand.collect(List.of(), 1500, server);
    assertEquals(1500, newest.getJobsCount());
    assertEquals(List.of(1000, 500), server.asked.stream().map(ListJobsRequest::getPageSize).toList());
  }

  @Test
  void aLimitBeyondTheJobsEndsAtTheLastPage() throws Exception {
    ListJobsResponse all = JobsCommand.collect(List.of(), 20, new Pages(3));
    assertEquals(3, all.getJobsCount());
    assertEquals("", all.getNextPageToken());
  }

  @Test
  void anEmptyPageThatNamesANextOneEndsTheListing() throws Exception {
    List<ListJobsRequest> asked = new ArrayList<>();
    ListJobsResponse none = JobsCommand.collect(List.of(), null, request -> {
      asked.add(request);
      return ListJobsResponse.newBuilder().setNextPageToken("again").build();
    });
    assertEquals(0, none.getJobsCount());
    assertEquals(1, asked.size());
  }
}
