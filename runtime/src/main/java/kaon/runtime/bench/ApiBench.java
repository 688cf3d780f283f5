package kaon.runtime.bench;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import kaon.actors.training.TaskCatalog;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.Job;
import kaon.protocol.v1.JobEvent;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.SubmitJobRequest;
import kaon.protocol.v1.WatchJobRequest;
import kaon.runtime.KaonNode;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.javadsl.Sink;

/**
 * API latency and fan-out on one node, over a real socket: GetJob latency (p50, p99) while a job
 * trains, then 100 concurrent WatchJob streams on that job, reporting the time until every
 * watcher had its first event and how many events they received while the job ran.
 *
 * <p>Usage: {@code bench/api [getJobCalls] [watchers]}.
 */
public final class ApiBench {

  private ApiBench() {}

  public static void main(String[] args) throws Exception {
    int calls = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
    int watchers = args.length > 1 ? Integer.parseInt(args[1]) : 100;
    String token = UUID.randomUUID().toString();
    var config = ConfigFactory.empty()
        .withValue("kaon.grpc.port", ConfigValueFactory.fromAnyRef(0))
        .withValue("kaon.grpc.auth.token", ConfigValueFactory.fromAnyRef(token))
        .withValue("kaon.node.cpu-slots", ConfigValueFactory.fromAnyRef(1))
        .withFallback(ConfigFactory.load());
    KaonNode.Running node = KaonNode.startLocal(config, TaskCatalog.load(ApiBench.class.getClassLoader()), System.out::println);
    ActorSystem<Void> clients = ActorSystem.create(Behaviors.empty(), "bench-client",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING").withFallback(ConfigFactory.load()));
    String bearer = "Bearer " + token;
    try {
      JobServiceClient jobs = JobServiceClient.create(
          GrpcClientSettings.connectToServiceAt("127.0.0.1", node.grpcPort(), clients).withTls(false), clients);
      // A job that trains for the whole benchmark: one worker, so the other core serves the API.
      Job job = jobs.submitJob().addHeader("authorization", bearer).invoke(SubmitJobRequest.newBuilder()
              .setSpec(JobSpecification.newBuilder().setTask("fashion-mnist-mlp").setMinWorkers(1).setMaxWorkers(1)
                  .setEpochs(1000).setCheckpointEverySteps(0))
              .build())
          .toCompletableFuture().get(60, TimeUnit.SECONDS);
      GetJobRequest get = GetJobRequest.newBuilder().setJobId(job.getJobId()).build();
      for (int i = 0; i < 200; i++) {
        jobs.getJob().addHeader("authorization", bearer).invoke(get).toCompletableFuture().get(10, TimeUnit.SECONDS);
      }
      long[] nanos = new long[calls];
      for (int i = 0; i < calls; i++) {
        long t0 = System.nanoTime();
        jobs.getJob().addHeader("authorization", bearer).invoke(get).toCompletableFuture().get(10, TimeUnit.SECONDS);
        nanos[i] = System.nanoTime() - t0;
      }
      Arrays.sort(nanos);
      System.out.printf(Locale.ROOT, "GetJob, %d sequential calls while the job trains: p50 %.2f ms, p99 %.2f ms, max %.2f ms%n",
          calls, nanos[calls / 2] / 1e6, nanos[(int) (calls * 0.99)] / 1e6, nanos[calls - 1] / 1e6);

      AtomicLong events = new AtomicLong();
      List<CompletableFuture<Long>> firsts = new ArrayList<>();
      List<CompletableFuture<?>> streams = new ArrayList<>();
      long start = System.nanoTime();
      for (int w = 0; w < watchers; w++) {
        CompletableFuture<Long> first = new CompletableFuture<>();
        firsts.add(first);
        streams.add(jobs.watchJob().addHeader("authorization", bearer).invoke(WatchJobRequest.newBuilder().setJobId(job.getJobId()).build())
            .runWith(Sink.<JobEvent>foreach(e -> {
              first.complete(System.nanoTime() - start);
              events.incrementAndGet();
            }), clients).toCompletableFuture());
      }
      CompletableFuture.allOf(firsts.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
      long allFirst = firsts.stream().mapToLong(CompletableFuture::join).max().orElse(0);
      long before = events.get();
      long window = System.nanoTime();
      // Ten seconds of progress events fanned out to every watcher.
      CompletableFuture<Void> tenSeconds = new CompletableFuture<>();
      clients.scheduler().scheduleOnce(java.time.Duration.ofSeconds(10), () -> tenSeconds.complete(null), clients.executionContext());
      tenSeconds.get(30, TimeUnit.SECONDS);
      double seconds = (System.nanoTime() - window) / 1e9;
      long received = events.get() - before;
      Job now = jobs.getJob().addHeader("authorization", bearer).invoke(get).toCompletableFuture().get(10, TimeUnit.SECONDS);
      System.out.printf(Locale.ROOT, "WatchJob, %d concurrent watchers: all had their first event after %.0f ms; "
              + "%.0f events/s delivered in total (%.1f per watcher per second) over %.1f s; the job went on at step %d%n",
          watchers, allFirst / 1e6, received / seconds, received / seconds / watchers, seconds, now.getStepsDone());
      jobs.cancelJob().addHeader("authorization", bearer)
          .invoke(kaon.protocol.v1.CancelJobRequest.newBuilder().setJobId(job.getJobId()).build())
          .toCompletableFuture().get(30, TimeUnit.SECONDS);
      CompletableFuture.allOf(streams.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
      jobs.close().toCompletableFuture().get(10, TimeUnit.SECONDS);
    } finally {
      clients.terminate();
      node.system().terminate();
      node.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }
  }
}
