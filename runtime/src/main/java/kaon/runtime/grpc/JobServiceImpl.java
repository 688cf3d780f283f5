package kaon.runtime.grpc;

import com.datastax.oss.driver.api.core.DriverException;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import kaon.actors.checkpoint.CheckpointDamagedException;
import kaon.actors.checkpoint.CheckpointStore;
import kaon.actors.job.JobCoordinator;
import kaon.actors.job.JobEntity;
import kaon.actors.job.JobUpdate;
import kaon.actors.job.OwnerReply;
import kaon.actors.training.JobSpec;
import kaon.actors.job.JobStatus;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.v1.CancelJobRequest;
import kaon.protocol.v1.DownloadModelRequest;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobServicePowerApi;
import kaon.protocol.v1.ListJobsRequest;
import kaon.protocol.v1.ListJobsResponse;
import kaon.protocol.v1.LogLine;
import kaon.protocol.v1.ModelChunk;
import kaon.protocol.v1.ScaleJobRequest;
import kaon.protocol.v1.StreamJobLogsRequest;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.protocol.v1.WatchJobRequest;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.javadsl.Metadata;
import org.apache.pekko.persistence.cassandra.query.javadsl.CassandraReadJournal;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.OverflowStrategy;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.typed.javadsl.ActorSource;

/**
 * {@code kaon.v1.JobService}: translates calls into asks of the job entities and their answers
 * into gRPC statuses. Holds no state of its own; any gateway node can serve any job, and stream
 * any succeeded job's model from the {@link CheckpointStore}.
 */
public final class JobServiceImpl implements JobServicePowerApi {

  static final String JOB_ID = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}";
  /** A watch re-subscribes this often: a restarted coordinator has forgotten its watchers. */
  private static final Duration REWATCH = Duration.ofSeconds(5);

  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final BearerToken token;
  private final SpecResolver specs;
  private final Duration timeout;
  private final Supplier<CompletionStage<Integer>> freeDevices;
  private final CheckpointStore store;
  private final JobLogStream logs;

  /**
   * @param freeDevices how many devices of the cluster are free now: a new job starts with as many
   *     workers as fit between its bounds
   * @param store where the models of succeeded jobs are read from
   */
  public JobServiceImpl(ActorSystem<?> system, BearerToken token, TaskCatalog catalog, GrpcSettings settings,
      Supplier<CompletionStage<Integer>> freeDevices, CheckpointStore store) {
    this.system = system;
    this.store = store;
    this.sharding = ClusterSharding.get(system);
    this.token = token;
    this.specs = new SpecResolver(catalog, settings.maxSpecBytes());
    this.timeout = settings.askTimeout();
    this.freeDevices = freeDevices;
    this.logs = new JobLogStream(system, this::status);
  }

  @Override
  public CompletionStage<Job> submitJob(SubmitJobRequest in, Metadata metadata) {
    token.check(metadata);
    if (in.getRequestId().length() > 128) {
      throw SpecResolver.invalid("request_id", "must be at most 128 characters");
    }
    if (!in.hasSpec()) {
      throw SpecResolver.invalid("spec", "is required");
    }
    String jobId = in.getRequestId().isEmpty() ? "job-" + UUID.randomUUID().toString().substring(0, 8) : jobIdFor(in.getRequestId());
    return freeDevices.get()
        .thenCompose(free -> {
          JobSpec spec = specs.resolve(in.getSpec(), free);
          return job(jobId).<OwnerReply>ask(replyTo -> new JobCoordinator.Submit(spec, replyTo), timeout);
        })
        .thenApply(reply -> ApiMapping.job(unwrap(reply)))
        .exceptionally(JobServiceImpl::fail);
  }

  @Override
  public CompletionStage<Job> getJob(GetJobRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    return status(id).thenApply(s -> {
      if (s.phase() == JobStatus.Phase.UNKNOWN && !s.health().isEmpty()) {
        // The job's journal could not be read yet: whether it exists is not known.
        throw new GrpcServiceException(Status.UNAVAILABLE.withDescription("job " + id + ": " + s.health()));
      }
      if (s.phase() == JobStatus.Phase.UNKNOWN) {
        throw notFound(id);
      }
      return ApiMapping.job(s);
    }).exceptionally(JobServiceImpl::fail);
  }

  /**
   * Every job's coordinator is asked, then the page is picked ({@link JobPages}): the journal lists
   * jobs by id only, so which are newest is known once all answered.
   */
  @Override
  public CompletionStage<ListJobsResponse> listJobs(ListJobsRequest in, Metadata metadata) {
    token.check(metadata);
    JobPages.Query query = JobPages.query(in);
    String prefix = JobEntity.ENTITY_KEY.name() + "|";
    CassandraReadJournal journal = PersistenceQuery.get(Adapter.toClassic(system))
        .getReadJournalFor(CassandraReadJournal.class, CassandraReadJournal.Identifier());
    return journal.currentPersistenceIds()
        .filter(id -> id.startsWith(prefix))
        .map(id -> id.substring(prefix.length()))
        // A few jobs at a time: each ask may recover a job from the journal.
        .mapAsync(8, this::status)
        .filter(s -> s.phase() != JobStatus.Phase.UNKNOWN)
        .map(ApiMapping::job)
        .runWith(Sink.seq(), system)
        .thenApply(query::page)
        .exceptionally(JobServiceImpl::fail);
  }

  @Override
  public Source<JobEvent, NotUsed> watchJob(WatchJobRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    EntityRef<JobCoordinator.Command> job = job(id);
    // Progress may be dropped for a slow client; the newest updates are the ones worth keeping.
    Source<JobUpdate, ActorRef<JobUpdate>> updates =
        ActorSource.actorRef(u -> false, u -> Optional.empty(), 1024, OverflowStrategy.dropHead());
    return updates
        .map(update -> {
          if (update instanceof JobUpdate.StatusChanged s && s.status().phase() == JobStatus.Phase.UNKNOWN) {
            throw s.status().health().isEmpty()
                ? notFound(id)
                : new GrpcServiceException(Status.UNAVAILABLE.withDescription("job " + id + ": " + s.status().health()));
          }
          return update;
        })
        .takeWhile(u -> !(u instanceof JobUpdate.StatusChanged s && s.status().phase().isTerminal()), true)
        .map(ApiMapping::event)
        .watchTermination((watcher, done) -> {
          job.tell(new JobCoordinator.Watch(watcher));
          // Watching again is idempotent; it matters after the coordinator restarted.
          Cancellable rewatch = system.scheduler().scheduleWithFixedDelay(
              REWATCH, REWATCH, () -> job.tell(new JobCoordinator.Watch(watcher)), system.executionContext());
          done.whenComplete((d, e) -> rewatch.cancel());
          return NotUsed.getInstance();
        });
  }

  @Override
  public CompletionStage<Job> cancelJob(CancelJobRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    return job(id).<OwnerReply>ask(JobCoordinator.Cancel::new, timeout)
        .thenApply(reply -> ApiMapping.job(unwrap(reply)))
        .exceptionally(JobServiceImpl::fail);
  }

  @Override
  public CompletionStage<Job> scaleJob(ScaleJobRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    if (in.getMinWorkers() <= 0) {
      throw SpecResolver.invalid("min_workers", "must be at least 1, was " + in.getMinWorkers());
    }
    if (in.getMaxWorkers() < in.getMinWorkers()) {
      throw SpecResolver.invalid("max_workers", "must be at least min_workers (" + in.getMinWorkers() + "), was " + in.getMaxWorkers());
    }
    return job(id).<OwnerReply>ask(
            replyTo -> new JobCoordinator.Scale(in.getMinWorkers(), in.getMaxWorkers(), replyTo), timeout)
        .thenApply(reply -> ApiMapping.job(unwrap(reply)))
        .exceptionally(JobServiceImpl::fail);
  }

  @Override
  public Source<LogLine, NotUsed> streamJobLogs(StreamJobLogsRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    if (in.getTail() < 0) {
      throw SpecResolver.invalid("tail", "must be 0 (all lines) or more, was " + in.getTail());
    }
    return logs.lines(id, in.getFollow(), in.getTail());
  }

  @Override
  public Source<ModelChunk, NotUsed> downloadModel(DownloadModelRequest in, Metadata metadata) {
    token.check(metadata);
    String id = jobId(in.getJobId());
    CompletionStage<Source<ModelChunk, NotUsed>> chunks = status(id)
        .thenCompose(s -> store.findModel(id, digestOfSucceeded(id, s)))
        .thenApply(found -> chunks(found.orElseThrow(() -> new GrpcServiceException(Status.NOT_FOUND.withDescription(
            "job " + id + " has no stored model: it succeeded before Kaon stored models; its node may still have the "
                + "file its spec names")))))
        .exceptionally(JobServiceImpl::fail);
    return Source.completionStageSource(chunks).mapMaterializedValue(m -> NotUsed.getInstance());
  }

  /** The job's digest, under which its model is stored, once it has succeeded. */
  private static String digestOfSucceeded(String id, JobStatus s) {
    return switch (s.phase()) {
      case UNKNOWN -> throw notFound(id);
      case SUCCEEDED -> s.digest();
      default -> throw new GrpcServiceException(Status.FAILED_PRECONDITION.withDescription(
          "job " + id + " is " + s.phase() + "; its model can be downloaded once it has succeeded"));
    };
  }

  /**
   * The model's chunks in order, each read when the client is ready for it: the gateway never
   * holds more than one chunk of a model in memory.
   */
  private Source<ModelChunk, NotUsed> chunks(CheckpointStore.StoredModel model) {
    return Source.range(0, model.chunks() - 1)
        .mapAsync(1, c -> store.readModelChunk(model, c).thenApply(data -> {
          ModelChunk.Builder chunk = ModelChunk.newBuilder().setData(ByteString.copyFrom(data));
          if (c == 0) {
            chunk.setSha256(model.sha256()).setTotalBytes(model.bytes());
          }
          return chunk.build();
        }).exceptionally(JobServiceImpl::fail));
  }

  private CompletionStage<JobStatus> status(String id) {
    return job(id).ask(JobCoordinator.GetStatus::new, timeout);
  }

  private EntityRef<JobCoordinator.Command> job(String id) {
    return sharding.entityRefFor(JobEntity.ENTITY_KEY, id);
  }

  private static String jobId(String id) {
    if (id.isEmpty()) {
      throw SpecResolver.invalid("job_id", "is required");
    }
    if (!id.matches(JOB_ID)) {
      throw SpecResolver.invalid("job_id", "must be 1-64 letters, digits, '.', '_' or '-', was '" + id + "'");
    }
    return id;
  }

  /**
   * The job id of a request id: the same request id always names the same job. A request id that
   * is a valid job id is used as it is, so that clients can name their jobs.
   */
  static String jobIdFor(String requestId) {
    if (requestId.matches(JOB_ID)) {
      return requestId;
    }
    try {
      byte[] hash = MessageDigest.getInstance("SHA-256").digest(requestId.getBytes(StandardCharsets.UTF_8));
      return "job-" + HexFormat.of().formatHex(hash, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every JVM", e);
    }
  }

  private static JobStatus unwrap(OwnerReply reply) {
    if (reply instanceof OwnerReply.Accepted accepted) {
      return accepted.status();
    }
    OwnerReply.Refused refused = (OwnerReply.Refused) reply;
    Status status = switch (refused.refusal()) {
      case NOT_FOUND -> Status.NOT_FOUND;
      case ENDED -> Status.FAILED_PRECONDITION;
      case CONFLICT -> Status.ALREADY_EXISTS;
      case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
      case UNAVAILABLE -> Status.UNAVAILABLE;
    };
    throw new GrpcServiceException(status.withDescription(refused.message()));
  }

  private static GrpcServiceException notFound(String id) {
    return new GrpcServiceException(Status.NOT_FOUND.withDescription("job " + id + " does not exist"));
  }

  private static <T> T fail(Throwable error) {
    Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
    if (cause instanceof GrpcServiceException g) {
      throw g;
    }
    if (cause instanceof TimeoutException) {
      throw new GrpcServiceException(Status.UNAVAILABLE.withDescription("the job did not answer in time; retry"));
    }
    if (cause instanceof CheckpointDamagedException) {
      throw new GrpcServiceException(Status.DATA_LOSS.withDescription(cause.getMessage()));
    }
    if (cause instanceof DriverException) {
      throw new GrpcServiceException(Status.UNAVAILABLE.withDescription("Cassandra did not answer (" + cause.getMessage()
          + "); retry"));
    }
    throw new GrpcServiceException(Status.INTERNAL.withDescription(cause.toString()));
  }
}
