package kaon.actors.job;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import kaon.actors.checkpoint.CheckpointDamagedException;
import kaon.actors.checkpoint.CheckpointInfo;
import kaon.actors.liveness.NodeLiveness;
import kaon.actors.worker.DeviceCensus;
import kaon.actors.worker.WorkerEntity;
import kaon.actors.worker.DeviceSlot;
import kaon.actors.worker.DeviceWorker;
import kaon.actors.worker.NodeAgent;
import kaon.actors.worker.WorkerReport;
import kaon.protocol.RingMessage;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.testkit.typed.FishingOutcome;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;

/**
 * One job coordinator under the event-sourced test kit (an in-memory journal), with test probes
 * standing in for its workers and plain values for the cluster's devices, the checkpoint store,
 * the lease and the journal's session. Everything the coordinator does outside itself arrives at
 * a probe or a counter here.
 */
final class CoordinatorFixture {

  static final Duration WAIT = Duration.ofSeconds(5);

  /** The test kit's config: an in-memory journal, a local actor system, Kaon's serializers. */
  static ActorTestKit testKit() {
    return ActorTestKit.create("coordinator", EventSourcedBehaviorTestKit.config()
        .withFallback(ConfigFactory.parseString("pekko.actor.provider = local"))
        .withFallback(ConfigFactory.defaultReference()));
  }

  /** Short waits; no growth looks unless a test asks for them. */
  static JobSettings settings(String overrides) {
    return JobSettings.fromConfig(ConfigFactory.parseString(overrides)
        .withFallback(ConfigFactory.parseString("state-answer-timeout = 300 ms, census-timeout = 1 s, "
            + "device-wait-interval = 300 ms, prepare-resend-interval = 1 h, persist-retry-min = 50 ms, "
            + "persist-retry-max = 200 ms, grow-look-interval = 1 h, reattach-timeout = 1 s, fencing = off"))
        .withFallback(ConfigFactory.defaultReference().getConfig("kaon.job")), "journal");
  }

  final String jobId;
  final ActorTestKit testKit;
  final TestProbe<JobCoordinator.Command> host;
  final TestProbe<WorkerReport> reports;
  final Map<Integer, TestProbe<DeviceWorker.Command>> members = new ConcurrentHashMap<>();
  /** Free devices the census finds, besides those the job's members own. */
  volatile int freeDevices;
  /** Members that own a device (their entity ids are the owners in the census). */
  final Set<Integer> owning = ConcurrentHashMap.newKeySet();
  volatile boolean journalUp = true;
  /** The lease is held but its last confirmation is old (checkLease false) until it is confirmed again. */
  volatile boolean leaseStale;
  /** What confirming the lease finds: null, it is ours; else the failure (unreachable, or taken). */
  volatile RuntimeException leaseProblem;
  final AtomicInteger leaseConfirmations = new AtomicInteger();
  /** Whether the journal still holds every event written (false: Cassandra lost acknowledged writes). */
  volatile boolean durable = true;
  final Set<String> damagedCheckpoints = ConcurrentHashMap.newKeySet();
  /** Each listing deletion of old checkpoints: the step it deleted below. */
  final List<Long> sweeps = new java.util.concurrent.CopyOnWriteArrayList<>();
  /** Each deletion of known checkpoints, by id. */
  final List<List<String>> deletions = new java.util.concurrent.CopyOnWriteArrayList<>();
  final AtomicInteger passivations = new AtomicInteger();
  /** The nodes each census was told to count without asking, in order. */
  final List<Set<String>> censusSkipped = new java.util.concurrent.CopyOnWriteArrayList<>();
  /** The tasks the coordinator asked the nodes to warm, in order. */
  final List<String> warmed = new java.util.concurrent.CopyOnWriteArrayList<>();
  /** Who watches each node (by address) for the end of its process, as the coordinator asked. */
  final Map<String, ActorRef<NodeLiveness.NodeGone>> watched = new ConcurrentHashMap<>();
  final EventSourcedBehaviorTestKit<JobCoordinator.Command, JobEvent, JobState> kit;

  CoordinatorFixture(ActorTestKit testKit, String jobId, JobSettings settings) {
    this.testKit = testKit;
    this.jobId = jobId;
    this.host = testKit.createTestProbe();
    this.reports = testKit.createTestProbe();
    this.kit = EventSourcedBehaviorTestKit.create(testKit.system(),
        JobCoordinator.create(jobId, host.getRef(), reports.getRef(), workers(), checkpoints(), settings, effects()),
        // Commands include local-only ones (children's answers); events and the state (its
        // snapshots) must round-trip through their serializers after every command.
        EventSourcedBehaviorTestKit.enabledSerializationSettings().withVerifyCommands(false));
  }

  /** Worker {@code member}'s probe. */
  TestProbe<DeviceWorker.Command> member(int member) {
    return members.computeIfAbsent(member, m -> testKit.createTestProbe("worker-" + m));
  }

  private JobWorkers workers() {
    return new JobWorkers() {
      @Override
      public RecipientRef<DeviceWorker.Command> member(int member) {
        return CoordinatorFixture.this.member(member).getRef();
      }

      @Override
      public CompletionStage<List<DeviceCensus.NodeDevices>> census(Set<String> lostNodes) {
        censusSkipped.add(lostNodes);
        List<NodeAgent.DeviceOwnership> devices = new ArrayList<>();
        owning.forEach(m -> devices.add(new NodeAgent.DeviceOwnership(slot(devices.size()), WorkerEntity.entityId(jobId, m))));
        for (int i = 0; i < freeDevices; i++) {
          devices.add(new NodeAgent.DeviceOwnership(slot(devices.size()), ""));
        }
        return CompletableFuture.completedFuture(List.of(new DeviceCensus.NodeDevices(new Address("pekko", "test"), devices)));
      }

      @Override
      public void warm(String task) {
        warmed.add(task);
      }

      @Override
      public void onNodeUp(ActorRef<ClusterEvent.MemberUp> subscriber) {}

      @Override
      public void onNodeJoining(ActorRef<ClusterEvent.MemberJoined> subscriber) {}

      @Override
      public void watchNode(NodeLiveness.Endpoint node, ActorRef<NodeLiveness.NodeGone> subscriber) {
        watched.put(node.node(), subscriber);
      }

      @Override
      public void unwatchNodes(ActorRef<NodeLiveness.NodeGone> subscriber) {
        watched.values().removeIf(subscriber::equals);
      }
    };
  }

  private static DeviceSlot slot(int i) {
    return new DeviceSlot("cpu:" + i, "cpu", 1);
  }

  private JobCheckpoints checkpoints() {
    return new JobCheckpoints() {
      @Override
      public CompletionStage<?> verify(CheckpointInfo checkpoint) {
        return damagedCheckpoints.contains(checkpoint.id())
            ? CompletableFuture.failedFuture(new CheckpointDamagedException("checkpoint " + checkpoint.id() + " is damaged"))
            : CompletableFuture.completedFuture(null);
      }

      @Override
      public CompletionStage<Integer> deleteOlderThan(long keepFromStep, Set<String> keep) {
        sweeps.add(keepFromStep);
        return CompletableFuture.completedFuture(0);
      }

      @Override
      public CompletionStage<?> delete(List<CheckpointInfo> checkpoints) {
        deletions.add(checkpoints.stream().map(CheckpointInfo::id).toList());
        return CompletableFuture.completedFuture(null);
      }

      @Override
      public int keepLast() {
        return 3;
      }
    };
  }

  private JobEffects effects() {
    return new JobEffects() {
      @Override
      public boolean passivate() {
        passivations.incrementAndGet();
        return true;
      }

      @Override
      public CompletionStage<?> confirmLease() {
        leaseConfirmations.incrementAndGet();
        RuntimeException problem = leaseProblem;
        if (problem != null) {
          return CompletableFuture.failedFuture(problem);
        }
        leaseStale = false;
        return CompletableFuture.completedFuture(null);
      }

      @Override
      public boolean leaseUnconfirmed() {
        return leaseStale;
      }

      @Override
      public CompletionStage<?> pingJournal() {
        return journalUp ? CompletableFuture.completedFuture(null)
            : CompletableFuture.failedFuture(new IllegalStateException("Cassandra is down"));
      }

      @Override
      public CompletionStage<Boolean> eventDurable(long sequenceNr) {
        if (!journalUp) {
          return CompletableFuture.failedFuture(new IllegalStateException("Cassandra is down"));
        }
        // A lost event stops the coordinator: answered a little later, so that the command that
        // led to the probe has been answered by then (the test kit asks for the state after it).
        return durable ? CompletableFuture.completedFuture(true)
            : CompletableFuture.supplyAsync(() -> false, CompletableFuture.delayedExecutor(300, java.util.concurrent.TimeUnit.MILLISECONDS));
      }

      @Override
      public String nodeAddress() {
        return "pekko://coordinator@127.0.0.1:1";
      }
    };
  }

  /** The next message of type {@code type} at {@code probe}, skipping others. */
  static <T extends DeviceWorker.Command> T next(TestProbe<DeviceWorker.Command> probe, Class<T> type) {
    List<DeviceWorker.Command> seen = probe.fishForMessage(WAIT, "a " + type.getSimpleName(),
        m -> type.isInstance(m) ? FishingOutcomes.complete() : (FishingOutcome) FishingOutcomes.continueAndIgnore());
    return type.cast(seen.get(seen.size() - 1));
  }

  /** How many of the job's events the test has looked at (see {@link #persisted}). */
  private int seen;

  /** The next event of type {@code type} the job persists after those looked at, waiting for it. */
  <T extends JobEvent> T persisted(Class<T> type) {
    return host.awaitAssert(WAIT, () -> {
      List<Object> all = kit.persistenceTestKit().persistedInStorage("Job|" + jobId);
      for (int i = seen; i < all.size(); i++) {
        if (type.isInstance(all.get(i))) {
          seen = i + 1;
          return type.cast(all.get(i));
        }
      }
      throw new AssertionError("no " + type.getSimpleName() + " among " + all.subList(Math.min(seen, all.size()), all.size()));
    });
  }

  /** Submits {@code spec} (which must be accepted); the events it records count as looked at. */
  JobStatus submit(kaon.actors.training.JobSpec spec) {
    OwnerReply reply = kit.<OwnerReply>runCommand(replyTo -> new JobCoordinator.Submit(spec, replyTo)).reply();
    seen = kit.persistenceTestKit().persistedInStorage("Job|" + jobId).size();
    return ((OwnerReply.Accepted) reply).status();
  }

  /** Asserts that the job persists nothing during {@code window}. */
  void persistsNothingFor(Duration window) {
    int before = kit.persistenceTestKit().persistedInStorage("Job|" + jobId).size();
    reports.expectNoMessage(window);
    List<Object> after = kit.persistenceTestKit().persistedInStorage("Job|" + jobId);
    if (after.size() != before) {
      throw new AssertionError("persisted " + after.subList(before, after.size()));
    }
  }

  /** The job's status now. */
  JobStatus status() {
    return kit.<JobStatus>runCommand(JobCoordinator.GetStatus::new).reply();
  }

  /** Tells the coordinator a worker's report. */
  void report(WorkerReport report) {
    kit.runCommand(new JobCoordinator.FromWorker(report));
  }

  /** Every member of the current generation answers that it is ready; returns their Begins. */
  List<DeviceWorker.Begin> allReady(long generation, List<Integer> ids, TestProbe<RingMessage> peer) {
    for (int rank = 0; rank < ids.size(); rank++) {
      DeviceWorker.Prepare prepare = next(member(ids.get(rank)), DeviceWorker.Prepare.class);
      report(new WorkerReport.Ready(generation, prepare.rank(), peer.getRef(), "cpu:" + rank, false));
    }
    List<DeviceWorker.Begin> begins = new ArrayList<>();
    ids.forEach(id -> begins.add(next(member(id), DeviceWorker.Begin.class)));
    return begins;
  }

  /** An epoch report of rank {@code rank} for 0-based epoch {@code epoch}. */
  static WorkerReport.EpochReport epoch(long generation, int rank, long seq, int epoch) {
    return new WorkerReport.EpochReport(generation, rank, seq, epoch, 300.0, 800, 1000, true, 40 + rank, 50, 1_000_000_000L,
        10L * (epoch + 1));
  }
}
