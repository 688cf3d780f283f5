package kaon.runtime.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.Timestamps;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.stream.IntStream;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import org.apache.pekko.grpc.GrpcServiceException;
import org.junit.jupiter.api.Test;

/** Filtering, ordering and paging of ListJobs, on literal jobs: one rule per test. */
class JobPagesTest {

  private static Job job(String id, long createdMillis, JobPhase phase) {
    Job.Builder job = Job.newBuilder().setJobId(id).setPhase(phase);
    if (createdMillis != 0) {
      job.setCreatedAt(Timestamps.fromMillis(createdMillis));
    }
    return job.build();
  }

  private static ListJobsResponse page(List<Job> jobs, ListJobsRequest.Builder request) {
    return JobPages.query(request.build()).page(jobs);
  }

  private static List<String> ids(ListJobsResponse response) {
    return response.getJobsList().stream().map(Job::getJobId).toList();
  }

  /** Every page of {@code request} over {@code jobs}, following the tokens, as ids. */
  private static List<List<String>> allPages(List<Job> jobs, ListJobsRequest.Builder request) {
    List<List<String>> pages = new ArrayList<>();
    ListJobsResponse response = page(jobs, request);
    pages.add(ids(response));
    while (!response.getNextPageToken().isEmpty()) {
      response = page(jobs, request.setPageToken(response.getNextPageToken()));
      pages.add(ids(response));
    }
    return pages;
  }

  private static String refusal(ListJobsRequest.Builder request) {
    GrpcServiceException e = assertThrows(GrpcServiceException.class, () -> JobPages.query(request.build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    return e.getStatus().getDescription();
  }

  @Test
  void jobsComeNewestFirstAndThoseCreatedTogetherById() {
    List<Job> jobs = List.of(job("b", 2000, JobPhase.RUNNING), job("old", 1000, JobPhase.SUCCEEDED),
        job("a", 2000, JobPhase.FAILED), job("new", 3000, JobPhase.STARTING));
    ListJobsResponse all = page(jobs, ListJobsRequest.newBuilder());
    assertEquals(List.of("new", "a", "b", "old"), ids(all));
    assertEquals("", all.getNextPageToken(), "one page holds them all");
  }

  @Test
  void jobsOfUnknownAgeComeLast() {
    List<Job> jobs = List.of(job("unknown", 0, JobPhase.SUCCEEDED), job("known", 1000, JobPhase.SUCCEEDED));
    assertEquals(List.of("known", "unknown"), ids(page(jobs, ListJobsRequest.newBuilder())));
  }

  @Test
  void onlyTheJobsInOneOfThePhasesAskedFor() {
    List<Job> jobs = List.of(job("r", 4000, JobPhase.RUNNING), job("s", 3000, JobPhase.SUCCEEDED),
        job("f", 2000, JobPhase.FAILED), job("st", 1000, JobPhase.STARTING));
    assertEquals(List.of("r", "st"), ids(page(jobs,
        ListJobsRequest.newBuilder().addPhases(JobPhase.RUNNING).addPhases(JobPhase.STARTING))));
    assertEquals(List.of(), ids(page(jobs, ListJobsRequest.newBuilder().addPhases(JobPhase.CANCELLED))));
  }

  @Test
  void aRequestWithoutAPageSizeGetsAHundredJobs() {
    List<Job> jobs = IntStream.range(0, 250).mapToObj(i -> job("job-" + i, 1000 + i, JobPhase.SUCCEEDED)).toList();
    List<List<String>> pages = allPages(jobs, ListJobsRequest.newBuilder());
    assertEquals(List.of(100, 100, 50), pages.stream().map(List::size).toList());
    assertEquals("job-249", pages.get(0).get(0));
    assertEquals("job-0", pages.get(2).get(49));
  }

  @Test
  void followingTheTokensListsEveryJobOnceInOrder() {
    List<Job> jobs = List.of(job("e", 5000, JobPhase.RUNNING), job("d", 4000, JobPhase.RUNNING),
        job("c2", 3000, JobPhase.RUNNING), job("c1", 3000, JobPhase.RUNNING), job("a", 1000, JobPhase.RUNNING));
    assertEquals(List.of(List.of("e", "d"), List.of("c1", "c2"), List.of("a")),
        allPages(jobs, ListJobsRequest.newBuilder().setPageSize(2)));
  }

  @Test
  void theLastPageHasNoToken() {
    List<Job> jobs = List.of(job("b", 2000, JobPhase.RUNNING), job("a", 1000, JobPhase.RUNNING));
    ListJobsResponse first = page(jobs, ListJobsRequest.newBuilder().setPageSize(2));
    assertEquals("", first.getNextPageToken(), "exactly full: no page after it");
  }

  @Test
  void jobsSubmittedBetweenPagesDoNotShiftTheNextPage() {
    List<Job> before = List.of(job("c", 3000, JobPhase.RUNNING), job("b", 2000, JobPhase.RUNNING),
        job("a", 1000, JobPhase.RUNNING));
    ListJobsResponse first = page(before, ListJobsRequest.newBuilder().setPageSize(2));
    assertEquals(List.of("c", "b"), ids(first));
    List<Job> after = new ArrayList<>(before);
    after.add(job("newer", 9000, JobPhase.STARTING));
    assertEquals(List.of("a"), ids(page(after, ListJobsRequest.newBuilder().setPageSize(2)
        .setPageToken(first.getNextPageToken()))));
  }

  @Test
  void theJobATokenEndedWithMayBeGone() {
    List<Job> jobs = List.of(job("c", 3000, JobPhase.RUNNING), job("b", 2000, JobPhase.RUNNING),
        job("a", 1000, JobPhase.RUNNING));
    String afterB = page(jobs, ListJobsRequest.newBuilder().setPageSize(2)).getNextPageToken();
    assertEquals(List.of("a"), ids(page(List.of(jobs.get(0), jobs.get(2)),
        ListJobsRequest.newBuilder().setPageToken(afterB))));
  }

  @Test
  void thePageSizeIsZeroToAThousand() {
    assertEquals(1000, JobPages.query(ListJobsRequest.newBuilder().setPageSize(1000).build()).pageSize());
    assertEquals(100, JobPages.query(ListJobsRequest.getDefaultInstance()).pageSize());
    assertTrue(refusal(ListJobsRequest.newBuilder().setPageSize(-1)).startsWith("page_size: "));
    assertTrue(refusal(ListJobsRequest.newBuilder().setPageSize(1001)).startsWith("page_size: "));
  }

  @Test
  void aTokenThisApiDidNotGiveIsRefused() {
    String good = JobPages.token(new JobPages.Place(1000, "job-1"));
    assertEquals(new JobPages.Place(1000, "job-1"), JobPages.place(good));
    for (String bad : List.of("garbage!", good.substring(1), encoded("2:1000:job-1"), encoded("1:x:job-1"),
        encoded("1:1000"), encoded("1:-5:job-1"), encoded("1:1000:no spaces"), encoded("1:99999999999999999999:job-1"))) {
      assertTrue(refusal(ListJobsRequest.newBuilder().setPageToken(bad)).startsWith("page_token: "), bad);
    }
  }

  @Test
  void anUnspecifiedPhaseIsRefused() {
    assertTrue(refusal(ListJobsRequest.newBuilder().addPhases(JobPhase.JOB_PHASE_UNSPECIFIED)).startsWith("phases: "));
    assertTrue(refusal(ListJobsRequest.newBuilder().addPhasesValue(42)).startsWith("phases: "));
  }

  private static String encoded(String plain) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(plain.getBytes(StandardCharsets.UTF_8));
  }
}
