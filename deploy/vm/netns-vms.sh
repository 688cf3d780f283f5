#!/usr/bin/env bash
# Four "VMs" on this machine, as network namespaces with their own addresses on a bridge: vm0 runs
# Cassandra, vm1..vm3 run Kaon nodes, each installed from the tarball by install.sh (--prefix, into
# a root of its own) and started with the exact ExecStart line of the unit install.sh wrote (there
# is no systemd inside a namespace). For the VM bootstrap test and bench/bootstrap; needs root.
#
#   deploy/vm/netns-vms.sh up TARBALL   network, Cassandra (schema applied), three installed nodes started
#   deploy/vm/netns-vms.sh install TARBALL   the same without starting the nodes
#   deploy/vm/netns-vms.sh start K      start node K (1..3) again with its unit's ExecStart line
#   deploy/vm/netns-vms.sh kill K       SIGKILL node K, as a crash would
#   deploy/vm/netns-vms.sh stop K       SIGTERM node K (a graceful leave) and wait for it to exit
#   deploy/vm/netns-vms.sh status       which nodes run, and what each one's /ready says
#   deploy/vm/netns-vms.sh down         stop everything and remove the namespaces and the bridge
#
# Faults, for kaon chaos run --cluster vms (each undone by heal, or by the command named):
#   deploy/vm/netns-vms.sh hang K | cont K          SIGSTOP / SIGCONT node K (a frozen VM)
#   deploy/vm/netns-vms.sh cassandra start|stop|kill   Cassandra on vm0 (kill: SIGKILL)
#   deploy/vm/netns-vms.sh partition K[,K..] [one-way]  cut nodes K.. off from the other nodes:
#                                        both ways, or one way (they send, but receive nothing);
#                                        Cassandra and this host stay reachable from both sides
#   deploy/vm/netns-vms.sh loss K PERCENT   drop that share of node K's packets, in and out
#   deploy/vm/netns-vms.sh rate K RATE      limit node K's bandwidth, each way (tc tbf; 10mbit)
#   deploy/vm/netns-vms.sh divert K PORT1 PORT2 PORT3   send node K's cluster traffic with node J
#                                        through this host's port PORTJ (a delaying proxy that
#                                        the caller runs: this kernel has no netem), and reset the
#                                        connections it has, so that they come back through it
#   deploy/vm/netns-vms.sh heal [K]         undo the network faults on node K (the first node of a
#                                        partition), or on every node
#
# Addresses: $KAON_VMS_NET.10 (Cassandra), .11 .. .13 (nodes), .1 (this host, on the bridge);
# default 10.77.0. Node K's API is on .1K:50051, its management (/alive, /ready) on https://.1K:7626.
# State, installs and logs under $KAON_VMS_DIR (default /tmp/kaon-vms): vmK/root is node K's
# install root, vmK/node.log its output (appended across restarts), token the API token, tls/ the
# cluster's CA and the nodes' certificates (openssl).
# Only namespaces, links and processes this script created are touched.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${KAON_VMS_DIR:-/tmp/kaon-vms}"
net="${KAON_VMS_NET:-10.77.0}"
tag="${KAON_VMS_TAG:-kaonvm}"   # prefix of namespaces and links
bridge="$tag-br"
nodes=(1 2 3)

die() { echo "netns-vms: $*" >&2; exit 1; }
usage() {
  echo "usage: netns-vms.sh up TARBALL | install TARBALL | start K | kill K | stop K | status | down" >&2
  echo "       | hang K | cont K | cassandra start|stop|kill | partition K[,K..] [one-way] | loss K PERCENT" >&2
  echo "       | rate K RATE | divert K PORT1 PORT2 PORT3 | heal [K]" >&2
  exit 2
}
ns() { echo "$tag$1"; }
addr() { echo "$net.1$1"; }
pidfile() { echo "$dir/vm$1/node.pid"; }
# Artery's port on every node (install.sh's default).
cluster_port=25520

alive() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && [ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" != Z ]
}

# The cluster's CA and a certificate per node, signed by it. Artery's TLS lets a peer in only with
# a certificate of this CA that shares a subject name with its own: every node's carries the
# cluster's name (DNS:kaon.cluster) beside its own address.
certificates() {
  local tls="$dir/tls"
  [ -f "$tls/ca.crt" ] && return
  mkdir -p "$tls" && chmod 700 "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kaon test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" 2> /dev/null
  for k in "${nodes[@]}"; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kaon.cluster" -keyout "$tls/vm$k.key" -out "$tls/vm$k.csr" 2> /dev/null
    printf 'subjectAltName=DNS:kaon.cluster,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$(addr "$k")" > "$tls/vm$k.ext"
    openssl x509 -req -in "$tls/vm$k.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 30 \
      -extfile "$tls/vm$k.ext" -out "$tls/vm$k.crt" 2> /dev/null
  done
}

network_up() {
  ip link show "$bridge" > /dev/null 2>&1 || {
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
  }
  ip link set "$bridge" up
  for k in 0 "${nodes[@]}"; do
    local n; n=$(ns "$k")
    ip netns list | grep -qw "$n" || ip netns add "$n"
    if ! ip link show "$n-h" > /dev/null 2>&1; then
      ip link add "$n-h" type veth peer name "$n-v"
      ip link set "$n-v" netns "$n"
      ip link set "$n-h" master "$bridge"
      ip link set "$n-h" up
      ip -n "$n" addr add "$([ "$k" = 0 ] && echo "$net.10" || addr "$k")/24" dev "$n-v"
      ip -n "$n" link set "$n-v" up
      ip -n "$n" link set lo up
    fi
  done
}

# The unit's ExecStart line, prefix and all: what systemd would run.
exec_start() {
  local unit="$dir/vm$1/root/etc/systemd/system/kaon-node.service"
  [ -f "$unit" ] || die "node $1 is not installed ($unit missing)"
  sed -n 's/^ExecStart=//p' "$unit"
}

# ---- faults

in_ns() { local k=$1; shift; ip netns exec "$(ns "$k")" "$@"; }
need_iptables() { command -v iptables > /dev/null || die "network faults need iptables (apt-get install iptables)"; }
# A rule in node K's namespace for a fault on node F (FAULT_NODE), tagged so that heal F finds it.
ipt() { local k=$1; shift; in_ns "$k" iptables -w "$@" -m comment --comment "kaon-chaos-$FAULT_NODE"; }

# Node K's addresses as a list, for the others; the host (.1) and Cassandra (.10) are never cut.
others() { local skip=",$1,"; for k in "${nodes[@]}"; do [[ $skip == *",$k,"* ]] || echo "$k"; done; }

partition() {
  need_iptables
  local side=$1 mode=${2:-both}
  [[ $side =~ ^[1-3](,[1-3])*$ ]] || die "partition: expected nodes such as 3 or 1,2, got '$side'"
  [[ $mode == both || $mode == one-way ]] || die "partition: expected one-way or nothing, got '$mode'"
  FAULT_NODE=${side%%,*}
  for k in ${side//,/ }; do
    for j in $(others "$side"); do
      ipt "$k" -A INPUT -s "$(addr "$j")" -j DROP
      [ "$mode" = one-way ] || ipt "$k" -A OUTPUT -d "$(addr "$j")" -j DROP
    done
  done
  echo "partition: nodes $side cut off from nodes $(others "$side" | paste -sd,) ($mode)"
}

loss() {
  need_iptables
  local k=$1 percent=$2
  [[ $percent =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "loss: expected a percentage, got '$percent'"
  local p; p=$(awk -v x="$percent" 'BEGIN { printf "%.4f", x / 100 }')
  FAULT_NODE=$k
  # Not the host's traffic: the tool watches the cluster through it.
  ipt "$k" -A INPUT ! -s "$net.1" -m statistic --mode random --probability "$p" -j DROP
  ipt "$k" -A OUTPUT ! -d "$net.1" -m statistic --mode random --probability "$p" -j DROP
  echo "loss: node $k drops $percent% of its packets"
}

rate() {
  local k=$1 rate=$2
  # Egress of the VM, and egress of the host's end of its link (the VM's ingress).
  in_ns "$k" tc qdisc replace dev "$(ns "$k")-v" root tbf rate "$rate" burst 64kb latency 400ms
  tc qdisc replace dev "$(ns "$k")-h" root tbf rate "$rate" burst 64kb latency 400ms
  echo "rate: node $k limited to $rate each way"
}

# Connections to the cluster port between node K and the others get a TCP reset, once: Artery
# opens them again, through whatever routes hold now.
reset_links() {
  local k=$1
  FAULT_NODE=$k
  for j in $(others "$k"); do
    ipt "$k" -I INPUT -p tcp -s "$(addr "$j")" --dport "$cluster_port" -j REJECT --reject-with tcp-reset
    ipt "$j" -I INPUT -p tcp -s "$(addr "$k")" --dport "$cluster_port" -j REJECT --reject-with tcp-reset
  done
  sleep 1
  for j in $(others "$k"); do
    ipt "$k" -D INPUT -p tcp -s "$(addr "$j")" --dport "$cluster_port" -j REJECT --reject-with tcp-reset
    ipt "$j" -D INPUT -p tcp -s "$(addr "$k")" --dport "$cluster_port" -j REJECT --reject-with tcp-reset
  done
}

divert() {
  need_iptables
  local k=$1; shift
  [ $# = ${#nodes[@]} ] || die "divert: expected a port for each of the ${#nodes[@]} nodes"
  local ports=("$@")
  for j in $(others "$k"); do
    # Node J's connections to K, and K's to J, through the proxy of their destination.
    in_ns "$j" iptables -w -t nat -A OUTPUT -p tcp -d "$(addr "$k")" --dport "$cluster_port" \
      -m comment --comment "kaon-chaos-$k" -j DNAT --to-destination "$net.1:${ports[$((k - 1))]}"
    in_ns "$k" iptables -w -t nat -A OUTPUT -p tcp -d "$(addr "$j")" --dport "$cluster_port" \
      -m comment --comment "kaon-chaos-$k" -j DNAT --to-destination "$net.1:${ports[$((j - 1))]}"
  done
  reset_links "$k"
  echo "divert: node $k's cluster traffic goes through $net.1 ports ${ports[*]}"
}

# Deletes the rules of faults on node F from every namespace.
drop_rules() {
  local f=$1
  for k in "${nodes[@]}"; do
    ip netns list | grep -qw "$(ns "$k")" || continue
    for table in filter nat; do
      while read -r rule; do
        [ -n "$rule" ] || continue
        eval "in_ns $k iptables -w -t $table ${rule/-A /-D }"
      done < <(in_ns "$k" iptables -w -t "$table" -S | grep -- "--comment kaon-chaos-$f\b" || true)
    done
  done
}

heal() {
  local which=("${nodes[@]}")
  [ $# = 0 ] || which=("$1")
  for f in "${which[@]}"; do
    # New connections go direct; those through a delaying proxy stay (the caller makes it a plain
    # relay): a reset would lose what Artery had in flight, which a latency that ends does not.
    drop_rules "$f"
    if ip netns list | grep -qw "$(ns "$f")"; then
      in_ns "$f" tc qdisc del dev "$(ns "$f")-v" root 2> /dev/null || true
    fi
    tc qdisc del dev "$(ns "$f")-h" root 2> /dev/null || true
  done
  echo "heal: no network faults on node(s) ${which[*]}"
}

start_node() {
  local k=$1
  if alive "$k"; then echo "node $k: already running (pid $(cat "$(pidfile "$k")"))"; return; fi
  local line; line=$(exec_start "$k")
  echo "=== node $k starting at $(date -u +%Y-%m-%dT%H:%M:%S.%3NZ): $line ===" >> "$dir/vm$k/node.log"
  # setsid: a process group of its own, so that kill reaches the launcher and the JVM alike.
  ip netns exec "$(ns "$k")" setsid bash -c "exec $line" >> "$dir/vm$k/node.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$k")"
  echo "node $k: started on $(addr "$k") (pid $!, log $dir/vm$k/node.log)"
}

signal_node() {
  local k=$1 sig=$2
  alive "$k" || { echo "node $k: not running"; return 0; }
  local pid; pid=$(cat "$(pidfile "$k")")
  kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid"
  for _ in $(seq 1 600); do alive "$k" || { echo "node $k: gone ($sig)"; return 0; }; sleep 0.1; done
  die "node $k did not exit within 60 s of SIG$sig"
}

cassandra() {
  ip netns exec "$(ns 0)" env KAON_CASSANDRA_HOST="$net.10" KAON_CASSANDRA_DIR="$dir/vm0/cassandra" \
    "$here/deploy/cassandra/cassandra.sh" "$@"
}

install() {
  local tarball=$1
  [ -f "$tarball" ] || die "no tarball at $tarball (mvn -B package builds deploy/target/kaon-<version>.tar.gz)"
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  mkdir -p "$dir"
  network_up
  mkdir -p "$dir/vm0"
  cassandra start
  [ -f "$dir/token" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/token"; chmod 600 "$dir/token"; }
  certificates
  local unpacked="$dir/dist"
  rm -rf "$unpacked" && mkdir -p "$unpacked" && tar -xzf "$tarball" -C "$unpacked"
  local dist; dist=$(find "$unpacked" -mindepth 1 -maxdepth 1 -type d | head -1)
  local hosts; hosts=$(for k in "${nodes[@]}"; do addr "$k"; done | paste -sd,)
  # Nodes create no keyspace on VMs; the operator applies the schema once, before they start.
  "$dist/bin/kaon" admin apply-schema --replication datacenter1:1 --cassandra "$net.10:9042" > "$dir/schema.log" 2>&1 \
    || { cat "$dir/schema.log" >&2; die "apply-schema failed"; }
  for k in "${nodes[@]}"; do
    # A fresh VM each time: install.sh keeps an existing kaon.conf, which would keep an earlier
    # run's settings.
    rm -rf "$dir/vm$k/root"
    mkdir -p "$dir/vm$k"
    "$dist/install.sh" --prefix "$dir/vm$k/root" --bind "$(addr "$k")" --discovery "config:$hosts" \
      --cassandra "$net.10:9042" --token-file "$dir/token" --devices "${KAON_VMS_DEVICES:-1}" \
      --tls-cert "$dir/tls/vm$k.crt" --tls-key "$dir/tls/vm$k.key" --tls-ca "$dir/tls/ca.crt" \
      > "$dir/vm$k/install.log" 2>&1 || { cat "$dir/vm$k/install.log" >&2; die "install.sh failed on vm$k"; }
  done
}

status() {
  for k in "${nodes[@]}"; do
    if alive "$k"; then
      local ready
      ready=$(ip netns exec "$(ns "$k")" curl -s -m 3 --cacert "$dir/tls/ca.crt" "https://$(addr "$k"):7626/ready" 2>/dev/null | tr '\n' ' ' || true)
      echo "node $k: running (pid $(cat "$(pidfile "$k")")) on $(addr "$k"): ${ready:-no answer on 7626}"
    else
      echo "node $k: not running"
    fi
  done
}

down() {
  for k in "${nodes[@]}"; do
    if alive "$k"; then signal_node "$k" KILL > /dev/null || true; fi
  done
  if ip netns list | grep -qw "$(ns 0)"; then cassandra stop > /dev/null 2>&1 || true; fi
  for k in 0 "${nodes[@]}"; do
    if ip netns list | grep -qw "$(ns "$k")"; then ip netns del "$(ns "$k")"; fi
    # Deleting the namespace removes its veth pair, but not at once.
    ip link del "$(ns "$k")-h" 2> /dev/null || true
  done
  ip link del "$bridge" 2> /dev/null || true
  echo "netns-vms: down (logs kept in $dir)"
}

case "${1:-}" in
  up) [ $# = 2 ] || usage; install "$2"; for k in "${nodes[@]}"; do start_node "$k"; done ;;
  install) [ $# = 2 ] || usage; install "$2" ;;
  start) [ $# = 2 ] || usage; start_node "$2" ;;
  kill) [ $# = 2 ] || usage; signal_node "$2" KILL ;;
  stop) [ $# = 2 ] || usage; signal_node "$2" TERM ;;
  status) status ;;
  hang) [ $# = 2 ] || usage; alive "$2" && kill -STOP -- "-$(cat "$(pidfile "$2")")"; echo "node $2: hung" ;;
  cont) [ $# = 2 ] || usage; alive "$2" && kill -CONT -- "-$(cat "$(pidfile "$2")")"; echo "node $2: continued" ;;
  cassandra)
    [ $# = 2 ] || usage
    case "$2" in
      start|stop) cassandra "$2" ;;
      kill) pid=$(cat "$dir/vm0/cassandra/cassandra.pid"); kill -KILL "$pid"
        while kill -0 "$pid" 2> /dev/null; do sleep 0.1; done; echo "cassandra: killed" ;;
      *) usage ;;
    esac ;;
  partition) [ $# -ge 2 ] && [ $# -le 3 ] || usage; partition "$2" "${3:-both}" ;;
  loss) [ $# = 3 ] || usage; loss "$2" "$3" ;;
  rate) [ $# = 3 ] || usage; rate "$2" "$3" ;;
  divert) [ $# -ge 2 ] || usage; divert "${@:2}" ;;
  heal) [ $# -le 2 ] || usage; heal "${@:2}" ;;
  down) heal > /dev/null 2>&1 || true; down ;;
  *) usage ;;
esac
