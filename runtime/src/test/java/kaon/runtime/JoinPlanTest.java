package kaon.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class JoinPlanTest {

  private static JoinPlan plan(boolean vm, List<String> seeds, String method, List<String> hosts, List<String> cassandra) {
    return JoinPlan.decide(new JoinPlan.Inputs(vm, seeds, method, hosts, "", cassandra));
  }

  @Test
  void aLoneLocalNodeStartsTheEmbeddedCassandra() {
    JoinPlan p = plan(false, List.of(), "", List.of(), List.of());
    assertEquals(JoinPlan.Join.ALONE, p.join());
    assertTrue(p.embedded());
    assertEquals(List.of(), p.problems());
  }

  @Test
  void aLocalClusterOnLoopbackSharesTheEmbeddedCassandra() {
    JoinPlan p = plan(false, List.of("pekko://kaon@127.0.0.1:25521", "localhost:25522"), "", List.of(), List.of());
    assertEquals(JoinPlan.Join.SEEDS, p.join());
    assertTrue(p.embedded(), p.toString());
  }

  @Test
  void aNodeJoiningAnotherMachineNeedsTheClustersCassandra() {
    JoinPlan p = plan(false, List.of("pekko://kaon@10.0.0.2:25520"), "", List.of(), List.of());
    assertFalse(p.embedded());
    assertEquals(1, p.problems().size(), p.toString());
    assertTrue(p.problems().get(0).startsWith("kaon.cassandra.contact-points"), p.problems().get(0));

    JoinPlan named = plan(false, List.of("pekko://kaon@10.0.0.2:25520"), "", List.of(), List.of("10.0.0.9:9042"));
    assertEquals(List.of(), named.problems());
    assertEquals(List.of("10.0.0.9:9042"), named.contactPoints());
  }

  @Test
  void aSeedGivenByNameIsNotTakenForThisMachine() {
    assertFalse(JoinPlan.isLoopback("pekko://kaon@vm-1.example:25520"));
    assertTrue(JoinPlan.isLoopback("pekko://kaon@127.0.0.5:25520"));
    assertTrue(JoinPlan.isLoopback("[::1]:25520"));
  }

  private static final java.util.Map<String, String> TLS =
      java.util.Map.of("certificate", "/etc/kaon/tls/node.crt", "private-key", "/etc/kaon/tls/node.key", "ca", "/etc/kaon/tls/ca.crt");

  private static JoinPlan vm(List<String> seeds, String method, List<String> hosts, List<String> cassandra,
      java.util.Map<String, String> tls, List<String> unreadable) {
    return JoinPlan.decide(new JoinPlan.Inputs(true, seeds, method, hosts, "", cassandra, tls, unreadable));
  }

  @Test
  void aVmNodeNeedsDiscoveryCassandraAndTlsAndNoSeeds() {
    JoinPlan bare = plan(true, List.of(), "", List.of(), List.of());
    assertEquals(3, bare.problems().size(), bare.toString());
    assertTrue(bare.problems().get(0).startsWith("kaon.cluster.discovery is missing"), bare.problems().get(0));
    assertTrue(bare.problems().get(1).startsWith("kaon.cluster.tls is missing"), bare.problems().get(1));
    assertTrue(bare.problems().get(2).startsWith("kaon.cassandra.contact-points"), bare.problems().get(2));
    assertFalse(bare.embedded());

    JoinPlan seeded = vm(List.of("127.0.0.1:25520"), "config", List.of("10.0.0.2"), List.of("10.0.0.9:9042"), TLS, List.of());
    assertEquals(1, seeded.problems().size(), seeded.toString());
    assertTrue(seeded.problems().get(0).contains("use one"), seeded.problems().get(0));

    JoinPlan good = vm(List.of(), "config", List.of("10.0.0.2", "10.0.0.3", "10.0.0.4"), List.of("10.0.0.9:9042"), TLS, List.of());
    assertEquals(JoinPlan.Join.DISCOVERY, good.join());
    assertTrue(good.tls());
    assertEquals(List.of(), good.problems());
  }

  @Test
  void tlsNeedsAllThreeFilesReadable() {
    JoinPlan partial = vm(List.of(), "config", List.of("10.0.0.2"), List.of("c:9042"),
        java.util.Map.of("certificate", "/a.crt"), List.of());
    assertEquals(List.of("kaon.cluster.tls needs certificate, private-key and ca (PEM files), or none; [private-key, ca] missing"),
        partial.problems());
    JoinPlan unreadable = vm(List.of(), "config", List.of("10.0.0.2"), List.of("c:9042"), TLS, List.of("/etc/kaon/tls/node.key"));
    assertEquals(List.of("kaon.cluster.tls: cannot read /etc/kaon/tls/node.key"), unreadable.problems());
    JoinPlan local = JoinPlan.decide(new JoinPlan.Inputs(false, List.of(), "", List.of(), "", List.of(), TLS, List.of()));
    assertTrue(local.tls(), "a local node may use TLS too");
    assertFalse(plan(false, List.of(), "", List.of(), List.of()).tls());
  }

  @Test
  void discoveryMustBeComplete() {
    assertTrue(plan(false, List.of(), "consul", List.of(), List.of("c:9042")).problems().get(0)
        .startsWith("kaon.cluster.discovery.method must be one of [config, dns]"));
    assertTrue(plan(false, List.of(), "config", List.of(), List.of("c:9042")).problems().get(0)
        .startsWith("kaon.cluster.discovery.hosts is empty"));
    assertTrue(JoinPlan.decide(new JoinPlan.Inputs(false, List.of(), "dns", List.of(), " ", List.of("c:9042")))
        .problems().get(0).startsWith("kaon.cluster.discovery.dns-name is empty"));
  }
}
