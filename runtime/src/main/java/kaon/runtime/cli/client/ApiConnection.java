package kaon.runtime.cli.client;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Collection;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.DownloadModelRequest;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.LogLine;
import kaon.protocol.v1.ModelChunk;
import kaon.protocol.v1.StreamJobLogsRequest;
import kaon.protocol.v1.WatchJobRequest;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.grpc.GrpcChannel;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.grpc.javadsl.SingleResponseRequestBuilder;
import org.apache.pekko.grpc.javadsl.StreamResponseRequestBuilder;

/**
 * A connection to a Kaon node's gRPC API: the {@link JobServiceClient} and {@link
 * ClusterServiceClient} over one HTTP/2 channel, on a small actor system of its own that never
 * joins a cluster. Every call carries the bearer token of the {@link Target}, when there is one.
 * Closing it closes the channel and stops the actor system.
 *
 * <pre>{@code
 * try (ApiConnection api = ApiConnection.open(target)) {
 *   Job job = api.call(api.jobs().getJob(), GetJobRequest.newBuilder().setJobId(id).build());
 * }
 * }</pre>
 */
public final class ApiConnection implements AutoCloseable {

  /**
   * How long a request–response call may take. Every call answers from a node's memory or one
   * Cassandra read, so 30 s only runs out when the node is stuck or the network drops packets, and
   * then a person is better told than left waiting. Watching has no limit: jobs run for hours.
   */
  public static final Duration CALL_TIMEOUT = Duration.ofSeconds(30);

  /** Stopping a local actor system takes milliseconds; this only bounds a wedged shutdown. */
  private static final Duration SHUTDOWN_TIMEOUT = Duration.ofSeconds(10);

  /**
   * The CLI is a plain client: a local actor provider (it must never join, or be mistaken for a
   * member of, a Kaon cluster), no remoting, and only warnings in the user's terminal.
   */
  private static final String CLIENT_CONFIG = "pekko.actor.provider = local\n"
      + "pekko.loglevel = WARNING\n"
      + "pekko.remote.artery.enabled = off";

  /**
   * Where and how to connect.
   *
   * @param host name or address of the node serving the API
   * @param port its gRPC port
   * @param token the bearer token sent with every call; empty to send none
   * @param tls whether to speak TLS
   * @param trustedCertificate a PEM file of the CA (or self-signed certificate) to trust instead
   *     of the JVM's default trust store; only used with TLS
   */
  public record Target(String host, int port, Optional<String> token, boolean tls, Optional<Path> trustedCertificate) {

    public Target {
      Objects.requireNonNull(host, "host");
      Objects.requireNonNull(token, "token");
      Objects.requireNonNull(trustedCertificate, "trustedCertificate");
      if (port < 1 || port > 65_535) {
        throw new IllegalArgumentException("port must be in 1..65535, was " + port);
      }
    }

    /** A plaintext target with an optional token, as a local node serves it. */
    public static Target plaintext(String host, int port, Optional<String> token) {
      return new Target(host, port, token, false, Optional.empty());
    }

    /** {@code host:port}, as users write it. */
    public String endpoint() {
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  private final Target target;
  private final ActorSystem system;
  private final GrpcChannel channel;
  private final JobServiceClient jobs;
  private final ClusterServiceClient cluster;

  private ApiConnection(Target target, ActorSystem system, GrpcChannel channel) {
    this.target = target;
    this.system = system;
    this.channel = channel;
    this.jobs = JobServiceClient.create(channel, system);
    this.cluster = ClusterServiceClient.create(channel, system);
  }

  /**
   * Starts the client's actor system and the channel. Nothing goes over the network yet: the
   * first call connects, and a node that cannot be reached fails that call with UNAVAILABLE.
   *
   * @throws IOException when the trusted certificate file cannot be read or holds no usable
   *     certificate
   */
  public static ApiConnection open(Target target) throws IOException {
    // Read before anything starts, so a bad file leaves nothing to stop.
    Optional<TrustManager> trustManager = target.tls() && target.trustedCertificate().isPresent()
        ? Optional.of(trustManager(target.trustedCertificate().get()))
        : Optional.empty();
    Config config = ConfigFactory.parseString(CLIENT_CONFIG).withFallback(ConfigFactory.load());
    ActorSystem system = ActorSystem.create("kaon-cli", config);
    try {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt(target.host(), target.port(), system)
          .withTls(target.tls());
      if (trustManager.isPresent()) {
        settings = settings.withTrustManager(trustManager.get());
      }
      return new ApiConnection(target, system, GrpcChannel.apply(settings, system));
    } catch (RuntimeException e) {
      system.terminate();
      throw e;
    }
  }

  /** Where this connection goes; error messages name it. */
  public Target target() {
    return target;
  }

  /** The job service; pass its request builders (e.g. {@code jobs().getJob()}) to {@link #call}. */
  public JobServiceClient jobs() {
    return jobs;
  }

  /** The cluster service; pass its request builders to {@link #call}. */
  public ClusterServiceClient cluster() {
    return cluster;
  }

  /** Adds the bearer token, if any, to a request–response call. */
  public <Q, R> SingleResponseRequestBuilder<Q, R> authorize(SingleResponseRequestBuilder<Q, R> rpc) {
    return target.token().isPresent() ? rpc.addHeader("authorization", "Bearer " + target.token().get()) : rpc;
  }

  /** Adds the bearer token, if any, to a call with a streamed response. */
  public <Q, R> StreamResponseRequestBuilder<Q, R> authorize(StreamResponseRequestBuilder<Q, R> rpc) {
    return target.token().isPresent() ? rpc.addHeader("authorization", "Bearer " + target.token().get()) : rpc;
  }

  /**
   * Makes one authorized request–response call and waits for its answer.
   *
   * @throws ExecutionException with the server's {@code io.grpc.StatusRuntimeException} as cause
   *     when the call failed; {@link ApiErrors} turns it into a message
   * @throws TimeoutException when there was no answer within {@link #CALL_TIMEOUT}
   */
  public <Q, R> R call(SingleResponseRequestBuilder<Q, R> rpc, Q request)
      throws ExecutionException, TimeoutException, InterruptedException {
    CompletionStage<R> reply = authorize(rpc).invoke(request);
    return reply.toCompletableFuture().get(CALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * Watches a job: hands {@code onEvent} the job's status, then every change, progress and
   * finished epoch, one at a time in the order they arrive, and returns when the server completes
   * the stream (the job has ended). Blocks the calling thread for as long as the job runs.
   *
   * @throws ExecutionException when the stream failed (its cause: the server's status, or what
   *     {@code onEvent} threw)
   */
  public void watchJob(String jobId, Consumer<JobEvent> onEvent) throws ExecutionException, InterruptedException {
    authorize(jobs.watchJob())
        .invoke(WatchJobRequest.newBuilder().setJobId(jobId).build())
        .runForeach(onEvent::accept, system)
        .toCompletableFuture()
        .get();
  }

  /**
   * Streams a job's log lines to {@code onLine} in the order the server sends them (time order),
   * and returns when the server completes the stream: at once without {@code follow}, else when
   * the job has ended. Blocks the calling thread meanwhile.
   *
   * @throws ExecutionException when the stream failed (its cause: the server's status)
   */
  public void streamJobLogs(String jobId, boolean follow, int tail, Consumer<LogLine> onLine)
      throws ExecutionException, InterruptedException {
    authorize(jobs.streamJobLogs())
        .invoke(StreamJobLogsRequest.newBuilder().setJobId(jobId).setFollow(follow).setTail(tail).build())
        .runForeach(onLine::accept, system)
        .toCompletableFuture()
        .get();
  }

  /**
   * Downloads the model of a job that succeeded: hands {@code onChunk} its chunks one at a time, in
   * order, and returns when the server has sent the last. The first chunk carries the file's
   * sha256 and length. Blocks the calling thread for as long as the download runs.
   *
   * @throws ExecutionException when the stream failed (its cause: the server's status, or what
   *     {@code onChunk} threw)
   */
  public void downloadModel(String jobId, Consumer<ModelChunk> onChunk) throws ExecutionException, InterruptedException {
    authorize(jobs.downloadModel())
        .invoke(DownloadModelRequest.newBuilder().setJobId(jobId).build())
        .runForeach(onChunk::accept, system)
        .toCompletableFuture()
        .get();
  }

  /** Closes the channel and stops the actor system, waiting a few seconds at most. */
  @Override
  public void close() {
    try {
      channel.closeCS().toCompletableFuture().get(SHUTDOWN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // The process is about to exit; a channel that would not close cleanly changes nothing.
    } finally {
      system.terminate();
      try {
        system.getWhenTerminated().toCompletableFuture().get(SHUTDOWN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (ExecutionException | TimeoutException e) {
        // As above: nothing the user could act on.
      }
    }
  }

  private static TrustManager trustManager(Path pem) throws IOException {
    try (InputStream in = Files.newInputStream(pem)) {
      Collection<? extends Certificate> certificates = CertificateFactory.getInstance("X.509").generateCertificates(in);
      if (certificates.isEmpty()) {
        throw new IOException("the TLS CA file " + pem + " holds no PEM certificate");
      }
      KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
      trusted.load(null, null);
      int i = 0;
      for (Certificate certificate : certificates) {
        trusted.setCertificateEntry("ca-" + i++, certificate);
      }
      TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      factory.init(trusted);
      return factory.getTrustManagers()[0];
    } catch (NoSuchFileException e) {
      throw new IOException("the TLS CA file " + pem + " does not exist", e);
    } catch (GeneralSecurityException e) {
      throw new IOException("the TLS CA file " + pem + " is not a usable PEM certificate: " + e.getMessage(), e);
    }
  }
}
