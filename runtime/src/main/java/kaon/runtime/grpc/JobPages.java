package kaon.runtime.grpc;

import com.google.protobuf.util.Timestamps;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Collection;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import org.apache.pekko.grpc.GrpcServiceException;

/**
 * Which jobs a page of {@code ListJobs} holds: the jobs in the phases asked for, newest first (by
 * when they were created, then by id), cut after the place the page token names. The token names
 * the last job of the page before by its creation time and id, not by a position: jobs submitted
 * since sort before that place, so they do not push a job onto two pages, and a job that went
 * away does not make the next page skip one. Pure: the caller gathers the jobs, this picks the page.
 */
final class JobPages {

  /** Jobs on a page when the request does not say. */
  static final int DEFAULT_PAGE_SIZE = 100;
  /** The most a request may ask for: each page's jobs travel in one message. */
  static final int MAX_PAGE_SIZE = 1000;

  private static final String TOKEN_VERSION = "1";

  /** Newest first; jobs created at the same millisecond by id, and jobs of unknown age last. */
  static final Comparator<Job> ORDER = Comparator.comparingLong(JobPages::createdMillis).reversed()
      .thenComparing(Job::getJobId);

  /** Where the previous page ended: its last job's creation time (epoch ms, 0 if unknown) and id. */
  record Place(long createdMillis, String jobId) {}

  /** A request whose fields were checked; {@code after} is null for the first page. */
  record Query(Set<JobPhase> phases, int pageSize, Place after) {

    /** The page of {@code jobs} this query asks for, and the token for the page after it. */
    ListJobsResponse page(Collection<Job> jobs) {
      List<Job> matching = jobs.stream()
          .filter(j -> phases.isEmpty() || phases.contains(j.getPhase()))
          .filter(j -> after == null || ORDER.compare(j, at(after)) > 0)
          .sorted(ORDER)
          .toList();
      List<Job> page = matching.subList(0, Math.min(pageSize, matching.size()));
      ListJobsResponse.Builder response = ListJobsResponse.newBuilder().addAllJobs(page);
      if (matching.size() > page.size()) {
        Job last = page.get(page.size() - 1);
        response.setNextPageToken(token(new Place(createdMillis(last), last.getJobId())));
      }
      return response.build();
    }
  }

  private JobPages() {}

  /**
   * The request's fields, checked.
   *
   * @throws GrpcServiceException INVALID_ARGUMENT naming the field that is wrong
   */
  static Query query(ListJobsRequest in) {
    Set<JobPhase> phases = EnumSet.noneOf(JobPhase.class);
    for (JobPhase phase : in.getPhasesList()) {
      if (phase == JobPhase.JOB_PHASE_UNSPECIFIED || phase == JobPhase.UNRECOGNIZED) {
        throw SpecResolver.invalid("phases", "must name phases: STARTING, RUNNING, SUCCEEDED, FAILED or CANCELLED");
      }
      phases.add(phase);
    }
    int size = in.getPageSize();
    if (size < 0 || size > MAX_PAGE_SIZE) {
      throw SpecResolver.invalid("page_size", "must be 0 (for " + DEFAULT_PAGE_SIZE + ") to " + MAX_PAGE_SIZE + ", was " + size);
    }
    Place after = in.getPageToken().isEmpty() ? null : place(in.getPageToken());
    return new Query(phases, size == 0 ? DEFAULT_PAGE_SIZE : size, after);
  }

  /** The token that continues after {@code place}: opaque to clients, who only hand it back. */
  static String token(Place place) {
    String plain = TOKEN_VERSION + ":" + place.createdMillis() + ":" + place.jobId();
    return Base64.getUrlEncoder().withoutPadding().encodeToString(plain.getBytes(StandardCharsets.UTF_8));
  }

  /** The place {@code token} names; INVALID_ARGUMENT if it is not one {@link #token} made. */
  static Place place(String token) {
    String[] parts;
    try {
      parts = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8).split(":", 3);
    } catch (IllegalArgumentException notBase64) {
      throw notAToken();
    }
    if (parts.length != 3 || !parts[0].equals(TOKEN_VERSION) || !parts[1].matches("[0-9]{1,19}")
        || !parts[2].matches(JobServiceImpl.JOB_ID)) {
      throw notAToken();
    }
    try {
      return new Place(Long.parseLong(parts[1]), parts[2]);
    } catch (NumberFormatException tooLarge) {
      throw notAToken();
    }
  }

  private static GrpcServiceException notAToken() {
    return SpecResolver.invalid("page_token", "is not a token this API gave; pass a next_page_token as it came, or none");
  }

  private static long createdMillis(Job job) {
    return job.hasCreatedAt() ? Timestamps.toMillis(job.getCreatedAt()) : 0;
  }

  /** A job that sorts exactly where {@code place} is. */
  private static Job at(Place place) {
    return Job.newBuilder().setJobId(place.jobId()).setCreatedAt(Timestamps.fromMillis(place.createdMillis())).build();
  }
}
