package kaon.runtime;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * How a node joins its cluster and where its Cassandra is, decided from its configuration before
 * anything starts, or why it must not start at all. A pure function of {@link Inputs}: the rules
 * that keep a node from forming a second cluster or keeping jobs in a database of its own are
 * tested without starting one.
 *
 * @param join how the node finds its cluster
 * @param contactPoints the Cassandra contact points ("host:port"); empty when {@code embedded}
 * @param embedded the node may start (or use) the embedded single Cassandra on this machine
 * @param tls the cluster port speaks TLS with mutual authentication (kaon.cluster.tls)
 * @param problems why the node refuses to start, one sentence each naming the setting; empty
 *     when it may start
 */
public record JoinPlan(Join join, List<String> contactPoints, boolean embedded, boolean tls, List<String> problems) {

  /** How a node finds its cluster. */
  public enum Join {
    /** A cluster of its own (the local default: {@code kaon train}, a lone {@code kaon node}). */
    ALONE,
    /** Pekko's seed nodes, given on the command line (a local multi-node cluster). */
    SEEDS,
    /** Pekko Management's Cluster Bootstrap over discovery (VMs). */
    DISCOVERY
  }

  /** Discovery methods a node accepts. */
  public static final List<String> METHODS = List.of("config", "dns");

  /**
   * What the decision reads.
   *
   * @param vm {@code kaon.mode = vm}: a node of a cluster across machines, held to its rules
   * @param seeds {@code pekko.cluster.seed-nodes}, as "host:port" or Pekko addresses
   * @param method {@code kaon.cluster.discovery.method}; empty: no discovery
   * @param hosts the config method's hosts
   * @param dnsName the dns method's name
   * @param contactPoints {@code kaon.cassandra.contact-points} and {@code contact-point}, merged
   * @param tlsFiles which of {@code kaon.cluster.tls}'s certificate, private-key and ca are set
   *     (setting name to path; only those set)
   * @param unreadable the set TLS files this node cannot read
   */
  public record Inputs(boolean vm, List<String> seeds, String method, List<String> hosts, String dnsName,
      List<String> contactPoints, java.util.Map<String, String> tlsFiles, List<String> unreadable) {

    /** Without TLS settings (tests of the other rules). */
    public Inputs(boolean vm, List<String> seeds, String method, List<String> hosts, String dnsName,
        List<String> contactPoints) {
      this(vm, seeds, method, hosts, dnsName, contactPoints, java.util.Map.of(), List.of());
    }
  }

  /** The files of kaon.cluster.tls, all or none. */
  public static final List<String> TLS_FILES = List.of("certificate", "private-key", "ca");

  /** The plan for {@code in}. */
  public static JoinPlan decide(Inputs in) {
    List<String> problems = new ArrayList<>();
    boolean discovery = !in.method().isBlank();
    if (discovery && !METHODS.contains(in.method())) {
      problems.add("kaon.cluster.discovery.method must be one of " + METHODS + ", was \"" + in.method() + "\"");
    } else if (in.method().equals("config") && in.hosts().isEmpty()) {
      problems.add("kaon.cluster.discovery.hosts is empty: the config method needs the cluster's hosts");
    } else if (in.method().equals("dns") && in.dnsName().isBlank()) {
      problems.add("kaon.cluster.discovery.dns-name is empty: the dns method needs the name to look up");
    }
    if (discovery && !in.seeds().isEmpty()) {
      // Seed nodes switch Cluster Bootstrap off; a node with both would silently ignore discovery.
      problems.add("pekko.cluster.seed-nodes (--seed) and kaon.cluster.discovery are both set; use one");
    }
    if (in.vm() && !discovery) {
      // A fixed first seed is what let a restarted first node form a second cluster.
      problems.add("kaon.cluster.discovery is missing: on VMs (kaon.mode = vm) nodes find each other by discovery,"
          + " not by seed nodes");
    }
    boolean tls = in.tlsFiles().size() == TLS_FILES.size();
    if (!in.tlsFiles().isEmpty() && !tls) {
      problems.add("kaon.cluster.tls needs certificate, private-key and ca (PEM files), or none; "
          + TLS_FILES.stream().filter(f -> !in.tlsFiles().containsKey(f)).toList() + " missing");
    } else if (tls && !in.unreadable().isEmpty()) {
      problems.add("kaon.cluster.tls: cannot read " + String.join(", ", in.unreadable()));
    } else if (in.vm() && !tls) {
      // Anyone who reaches the cluster port could otherwise join as a member and send it messages.
      problems.add("kaon.cluster.tls is missing: on VMs (kaon.mode = vm) the cluster port speaks TLS, and only nodes"
          + " with a certificate of the cluster's CA may join");
    }
    Join join = discovery ? Join.DISCOVERY : in.seeds().isEmpty() ? Join.ALONE : Join.SEEDS;
    boolean embedded = in.contactPoints().isEmpty();
    if (embedded && (in.vm() || join == Join.DISCOVERY || !in.seeds().stream().allMatch(JoinPlan::isLoopback))) {
      // Each machine would start a Cassandra of its own, and each keep its own jobs: the cluster
      // would lose them with the node that holds them. On one machine the embedded node is shared.
      problems.add("kaon.cassandra.contact-points (or KAON_CASSANDRA_CONTACT_POINT) is missing: a node of a cluster"
          + " across machines never starts a Cassandra of its own; name the cluster's Cassandra");
    }
    return new JoinPlan(join, in.contactPoints(), embedded && problems.isEmpty(), tls, List.copyOf(problems));
  }

  /** A seed on this machine: a literal loopback address or "localhost" (never resolved by name). */
  static boolean isLoopback(String seed) {
    String host = seed.replaceFirst("^[a-z]+://[^@]*@", "");
    int colon = host.lastIndexOf(':');
    host = colon > 0 ? host.substring(0, colon) : host;
    if (host.equals("localhost")) {
      return true;
    }
    if (!host.matches("[0-9.]+|\\[?[0-9a-fA-F:]+]?")) {
      return false;
    }
    try {
      return InetAddress.getByName(host.replace("[", "").replace("]", "")).isLoopbackAddress();
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }
}
