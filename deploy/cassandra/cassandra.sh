#!/usr/bin/env bash
# A real single-node Cassandra 5.0.9 for local use, tests and CI, run as a JVM of its own.
#
#   cassandra.sh start | stop | status | clean | log [-f]
#
# cassandra-all comes from Maven Central through ./pom.xml, never from the application's classpath:
# its netty, guava and jackson differ from Kaon's. There is no Docker and no tarball; the first start
# resolves about 100 jars (68 MB) into ~/.m2 and caches the classpath in the data directory.
#
#   KAON_CASSANDRA_DIR           data, logs, generated config, cached classpath. Reused across runs.
#                                Default ${XDG_DATA_HOME:-$HOME/.local/share}/kaon/cassandra
#   KAON_CASSANDRA_CLASSPATH_FILE  where the resolved classpath is cached, default in the data
#                                directory; instances made afresh (each chaos run's) share one elsewhere
#   KAON_CASSANDRA_HOST          address to listen on and to check, default 127.0.0.1
#   KAON_CASSANDRA_PORT          CQL port, default 9042
#   KAON_CASSANDRA_STORAGE_PORT  inter-node port, default 7000 (bound even on a single node)
#   KAON_CASSANDRA_JMX_PORT      JMX for nodetool, on the host only, default 7199
#   KAON_CASSANDRA_HEAP          -Xms/-Xmx, default 512M; it also caps one CQL request at 2.5 % of heap
#                                (13 MB at 512M), so keep events and snapshots small
#   KAON_CASSANDRA_JAVA          java binary, default `java` on PATH; must be 11 or 17 (5.0 fails on 25)
#   KAON_CASSANDRA_COMMITLOG_SYNC group (default: nothing acknowledged is lost when the JVM is
#                                killed) or periodic (faster writes; a kill loses up to 10 s of them)
#
# Exit codes: 0 ok; 1 failure (message and, for start, the end of the log on stderr); 3 `status`
# when this instance is not answering CQL. `start` and `stop` are idempotent and print one line on
# stdout.
#
# Measured on 2 cores shared with another build (load 1.5-3.5), OpenJDK 17.0.15, heap 512M, from
# launch to CQL answering: fresh directory 7.3-13.2 s; restart on existing data 6.2-10.9 s; after
# kill -9, 7.6-10.6 s until CQL answers again (about 1,050 commit log mutations replayed in ~1 s). stop (SIGTERM, drain) 2.6-2.9 s. RSS 0.61 GB after start, 0.70 GB after 1,000
# writes. The first start also spends ~30 s resolving the jars; later ones reuse the cached classpath.
#
# Linux only: it relies on /proc, setsid and flock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom=$here/pom.xml
dir=${KAON_CASSANDRA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kaon/cassandra}
# The directory identifies the instance (see is_ours), so it must not depend on the caller's cwd.
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}
host=${KAON_CASSANDRA_HOST:-127.0.0.1}
port=${KAON_CASSANDRA_PORT:-9042}
storage_port=${KAON_CASSANDRA_STORAGE_PORT:-7000}
jmx_port=${KAON_CASSANDRA_JMX_PORT:-7199}
heap=${KAON_CASSANDRA_HEAP:-512M}
java=${KAON_CASSANDRA_JAVA:-java}
commitlog_sync=${KAON_CASSANDRA_COMMITLOG_SYNC:-group}
case $commitlog_sync in
  group|periodic) ;;
  *) echo "cassandra: KAON_CASSANDRA_COMMITLOG_SYNC must be group or periodic, was '$commitlog_sync'" >&2; exit 1 ;;
esac

pidfile=$dir/cassandra.pid
cpfile=${KAON_CASSANDRA_CLASSPATH_FILE:-$dir/classpath.txt}
out=$dir/logs/cassandra.out
start_timeout_s=180
stop_timeout_s=60
# After kill -9 a JVM with hundreds of threads needs 1-2 s to release its sockets.
port_release_s=15

say() { echo "cassandra: $*"; }
die() { echo "cassandra: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs_since() { local ms=$(( $(now_ms) - $1 )); echo "$(( ms / 1000 )).$(( ms % 1000 / 100 ))"; }

# A zombie keeps its pid until someone reaps it, which may be never in a container whose init does
# not reap; it holds no sockets or files, so it counts as dead.
is_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The pid file alone could name a recycled pid; the marker property on the command line cannot.
# Not grep -q: it exits at the first match, tr then dies of SIGPIPE, and pipefail fails the test.
is_ours() {
  is_alive "$1" && tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -xF -- "-Dkaon.cassandra.dir=$dir" > /dev/null
}

running_pid() {
  local pid
  [ -f "$pidfile" ] && pid=$(<"$pidfile") && [ -n "$pid" ] && is_ours "$pid" && echo "$pid"
}

tcp_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$1" 2>/dev/null
}

# An accepting socket is not yet a CQL server: send a protocol v4 OPTIONS frame and expect the
# SUPPORTED reply (response flag + v4, opcode 0x06). Cassandra opens this port last in its start-up.
cql_ready() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
    head -c 5 <&3 | od -An -tx1' "$host" "$port" 2>/dev/null) || return 1
  [ "$(echo $reply)" = "84 00 00 00 06" ]
}

port_owner() {
  local owner
  owner=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1) || true
  [ -n "$owner" ] && echo " (${owner/=/ })"
}

wait_ports_free() {
  local deadline=$(( $(date +%s) + port_release_s ))
  while tcp_open "$port" || tcp_open "$storage_port" || tcp_open "$jmx_port"; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}

check_java() {
  local version
  version=$("$java" -version 2>&1 | sed -n '1s/.*version "\([^"]*\)".*/\1/p') || true
  [ -n "$version" ] || die "cannot run '$java'; set KAON_CASSANDRA_JAVA to a Java 11 or 17 binary"
  case ${version%%[.+-]*} in
    11|17) ;;
    *) die "Cassandra 5.0 runs on Java 11 or 17 only, but '$java' is $version; set KAON_CASSANDRA_JAVA (e.g. /usr/lib/jvm/java-17-openjdk-amd64/bin/java)" ;;
  esac
}

classpath_is_current() {
  local jars jar
  [ -s "$cpfile" ] && [ ! "$pom" -nt "$cpfile" ] || return 1
  # A wiped ~/.m2 leaves a cache that names missing jars.
  IFS=: read -r -a jars < "$cpfile" || true
  for jar in "${jars[@]}"; do [ -f "$jar" ] || return 1; done
}

resolve_classpath() {
  classpath_is_current && return
  command -v mvn >/dev/null || die "mvn is needed once to resolve cassandra-all into ~/.m2"
  echo "cassandra: resolving cassandra-all with $pom (once; ~30 s on a fresh ~/.m2)" >&2
  local tmp=$cpfile.$$
  mkdir -p "$(dirname "$cpfile")"
  if ! mvn -q -B -f "$pom" dependency:build-classpath -Dmdep.outputFile="$tmp" > "$dir/logs/resolve.log" 2>&1; then
    tail -n 30 "$dir/logs/resolve.log" >&2
    rm -f "$tmp"
    die "could not resolve cassandra-all (full output in $dir/logs/resolve.log)"
  fi
  mv -f "$tmp" "$cpfile"
}

# How the commit log reaches the disk, which decides what a SIGKILL can take back.
#   periodic: a write is acknowledged before it is synced, and replay after a crash stops at the last
#     sync marker, so a killed JVM (not only a lost OS) drops up to the sync period of acknowledged
#     writes. The random-fault soak lost an acknowledged journal event this way, leaving a gap that
#     the job's recovery could not pass; bench/cassandra-durability shows it.
#   group (the default): writes wait for the next sync (every 2 ms) and share it; nothing
#     acknowledged is lost to a kill. Measured with bench/cassandra-durability (one write at a time,
#     SIGKILL after 8 s): periodic 520 writes/s and 29 of 1,611 acknowledged lost; group with a
#     10 ms window 92/s, with 2 ms 237/s, none lost. A job writes a few events a second.
commitlog_sync_config() {
  case $commitlog_sync in
    group) printf 'commitlog_sync: group\ncommitlog_sync_group_window: 2ms' ;;
    periodic) printf 'commitlog_sync: periodic\ncommitlog_sync_period: 10000ms' ;;
  esac
}

# Regenerated on every start so that changed ports, host or directory take effect. Everything not
# set here keeps Cassandra 5.0's built-in default.
write_config() {
  local d=${dir//\'/\'\'}   # single-quoted YAML: only a quote needs escaping
  mkdir -p "$dir/conf"
  cat > "$dir/conf/cassandra.yaml" <<EOF
# Generated by deploy/cassandra/cassandra.sh on every start; edits are lost.
cluster_name: kaon-local
# One node, one token: vnodes only matter for spreading data over several nodes.
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
# SimpleSnitch puts the node in "datacenter1", the local-datacenter the driver must be given.
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$host:$storage_port"
listen_address: $host
rpc_address: $host
storage_port: $storage_port
native_transport_port: $port
data_file_directories:
  - '$d/data/data'
commitlog_directory: '$d/data/commitlog'
hints_directory: '$d/data/hints'
saved_caches_directory: '$d/data/saved_caches'
cdc_raw_directory: '$d/data/cdc_raw'
$(commitlog_sync_config)
# The largest mutation is half a segment, so this also bounds the largest event (16 MiB).
commitlog_segment_size: 32MiB
# Snapshots before TRUNCATE/DROP would keep test data on disk forever.
auto_snapshot: false
# Small memtables keep the heap small; flushes are cheap at test volumes.
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
concurrent_compactors: 1
# No hints to keep: there is no other replica to deliver them to.
hinted_handoff_enabled: false
# No authentication or authorization: this node is for local development, tests and CI only and
# listens on $host. Never expose it or reuse this file for a shared deployment.
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
EOF
  cat > "$dir/conf/logback.xml" <<'EOF'
<!-- Generated by deploy/cassandra/cassandra.sh. Logs go to stdout, which the script sends to
     logs/cassandra.out (kept for one previous run as cassandra.out.1). -->
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%d{ISO8601} %-5level [%thread] %logger{0}:%line - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
EOF
}

jvm_options() {
  jvm=(
    -Xms"$heap" -Xmx"$heap"
    # Named because the JVM picks Serial GC on machines it considers small (< 2 CPUs or < 1792 MB).
    -XX:+UseG1GC
    # Cassandra's own start-up check asks for this: a node that carries on after an OOM can write
    # corrupt data. Dying lets the next start replay the commit log instead.
    -XX:+ExitOnOutOfMemoryError
    -XX:ErrorFile="$dir/logs/hs_err_%p.log"
    -Djava.net.preferIPv4Stack=true
    "-Dkaon.cassandra.dir=$dir"
    "-Dcassandra.config=file://$dir/conf/cassandra.yaml"
    "-Dlogback.configurationFile=$dir/conf/logback.xml"
    # Without it the daemon closes stdout and stderr, and cassandra.out would stop at start-up.
    -Dcassandra-foreground=yes
    # A single node has nobody to gossip with; the defaults wait ~30 s for a ring that cannot change.
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=100
    -Dcassandra.superuser_setup_delay_ms=0
    # ...and on SIGTERM the default waits 2 s for peers to hear that it is going down.
    -Dcassandra.shutdown_announce_in_ms=0
    # Local-only JMX (bound to the loopback, no authentication) so that nodetool can inspect the
    # node. Without a JMX port Cassandra starts just as well; stop does not need it (SIGTERM drains).
    -Dcassandra.jmx.local.port="$jmx_port"
    # The jamm javaagent is left out: Cassandra 5.0 falls back to its own memory estimates.
    -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true
    # Cassandra's jvm17-server.options, which cassandra-all does not ship: Java 17 refuses
    # Cassandra's reflective access without them. Java 11 permits that access by default and
    # accepts the same flags (not run here: this machine has no JDK 11).
    --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports=java.sql/java.sql=ALL-UNNAMED
    --add-exports=java.base/java.lang.ref=ALL-UNNAMED
    --add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens=java.base/java.lang.module=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
  )
}

fail_start() {
  echo "cassandra: last 30 lines of $out:" >&2
  tail -n 30 "$out" >&2 || true
  die "$1"
}

# Returns 1 if the process exits before CQL answers; on timeout stops it, so that a retry starts
# from a clean state instead of adopting a node that is stuck.
wait_ready() {
  local pid=$1 deadline=$(( $(date +%s) + start_timeout_s ))
  until cql_ready; do
    is_alive "$pid" || return 1
    if (( $(date +%s) >= deadline )); then
      stop_pid "$pid"
      rm -f "$pidfile"
      fail_start "no CQL on $host:$port after ${start_timeout_s} s; stopped pid $pid"
    fi
    sleep 0.5
  done
}

launch() {
  local pid t0
  check_java
  mkdir -p "$dir/logs" "$dir/data"
  resolve_classpath
  write_config
  jvm_options
  # Cassandra mlockall()s its whole address space whenever it may (as root, or with an unlimited
  # memlock limit), which pins ~1 GB that training on the same machine needs more than a test
  # database does. A small limit, and for root the loss of CAP_IPC_LOCK, makes that call fail
  # harmlessly (one WARN line): RSS after start drops from 0.95 to 0.6 GB.
  local unpinned=()
  if [ "$(id -u)" = 0 ] && setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock true 2>/dev/null; then
    unpinned=(setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock)
  fi
  [ -f "$out" ] && mv -f "$out" "$out.1"
  t0=$(now_ms)
  # setsid + nohup: the node outlives the shell or Maven process that started it. Not a process
  # group leader here (no job control in a script), so setsid execs in place and $! is the JVM.
  # fd 9 is the start/stop lock, which the daemon must not inherit.
  (cd "$dir" && { ulimit -l 64 2>/dev/null || true; } &&
    exec setsid nohup "${unpinned[@]}" "$java" "${jvm[@]}" -cp "$(<"$cpfile")" \
      org.apache.cassandra.service.CassandraDaemon) > "$out" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$pidfile"
  wait_ready "$pid" || { rm -f "$pidfile"; fail_start "exited during start-up (pid $pid)"; }
  say "started on $host:$port (data in $dir, pid $pid, $(secs_since "$t0") s)"
}

start() {
  local pid t0
  if pid=$(running_pid); then
    if cql_ready; then
      say "already running on $host:$port (data in $dir, pid $pid)"
      return
    fi
    # Another start is in progress, or it is replaying its commit log: wait for it rather than
    # fail on the ports it holds.
    t0=$(now_ms)
    if wait_ready "$pid"; then
      say "started on $host:$port (data in $dir, pid $pid, waited $(secs_since "$t0") s)"
      return
    fi
  fi
  if [ -f "$pidfile" ]; then
    rm -f "$pidfile"
    wait_ports_free || true
  fi
  local p
  for p in "$port" "$storage_port" "$jmx_port"; do
    if tcp_open "$p"; then
      die "port $host:$p is held by another process$(port_owner "$p"); stop it or choose other ports (KAON_CASSANDRA_PORT, _STORAGE_PORT, _JMX_PORT)"
    fi
  done
  launch
}

stop_pid() {
  local pid=$1 deadline=$(( $(date +%s) + stop_timeout_s ))
  kill -TERM "$pid" 2>/dev/null || true
  while is_alive "$pid"; do
    if (( $(date +%s) >= deadline )); then
      echo "cassandra: pid $pid ignored SIGTERM for ${stop_timeout_s} s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(( $(date +%s) + port_release_s ))
    fi
    sleep 0.2
  done
  wait_ports_free || echo "cassandra: ports $port/$storage_port/$jmx_port still held after pid $pid exited" >&2
}

stop() {
  local pid t0
  if ! pid=$(running_pid); then
    if [ -f "$pidfile" ]; then
      rm -f "$pidfile"
      wait_ports_free || true
    fi
    say "not running (data in $dir)"
    return
  fi
  t0=$(now_ms)
  stop_pid "$pid"
  rm -f "$pidfile"
  say "stopped (pid $pid, $(secs_since "$t0") s)"
}

status() {
  local pid
  if pid=$(running_pid); then
    if cql_ready; then
      say "running on $host:$port (data in $dir, pid $pid)"
      exit 0
    fi
    say "pid $pid is up but not answering CQL on $host:$port yet (see $out)"
  elif [ -f "$pidfile" ]; then
    say "not running: pid $(<"$pidfile") exited without stop; start recovers from the commit log"
  elif tcp_open "$port"; then
    say "not running; $host:$port is held by another process$(port_owner "$port")"
  else
    say "not running (data in $dir)"
  fi
  exit 3
}

clean() {
  stop
  rm -rf "${dir:?}/data" "$dir/logs" "$dir/conf"
  say "removed data, commit log and logs in $dir (kept the cached classpath)"
}

log() {
  [ -f "$out" ] || die "no log yet at $out"
  if [ "${1:-}" = -f ]; then exec tail -n 50 -F "$out"; fi
  tail -n 50 "$out"
}

# start, stop and clean take a lock so that two callers (say CI and the Maven build) never launch
# two nodes on one directory.
lock() {
  mkdir -p "$dir"
  exec 9>> "$dir/.lock"
  flock 9
}

case ${1:-} in
  start) lock; start ;;
  stop) lock; stop ;;
  clean) lock; clean ;;
  status) status ;;
  log) log "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|clean|log [-f]   (environment: see the top of this file)" >&2; exit 2 ;;
esac
