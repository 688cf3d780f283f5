#!/usr/bin/env bash
# A local Kaon cluster of N node JVMs on this machine, for trying elasticity and failures by hand.
#
#   deploy/local/cluster.sh start [N]   start those of nodes 1..N (default 3) that do not run, one
#                                       device each (KAON_LOCAL_DEVICES); node K serves the API on 127.0.0.1:50050+K
#                                       (KAON_LOCAL_API_PORT for node 1); every node may host
#                                       coordinators and train
#   deploy/local/cluster.sh start N K   start only node K of the N nodes (if it does not run)
#   deploy/local/cluster.sh stop        stop them (SIGTERM: jobs stay remembered)
#   deploy/local/cluster.sh kill K      SIGKILL node K, as a crash would
#   deploy/local/cluster.sh hang K      SIGSTOP node K, as a hung JVM or host would (cont K resumes it)
#   deploy/local/cluster.sh status      which nodes run
#   deploy/local/cluster.sh drop-keyspaces KS...
#                                       drop throwaway keyspaces (benches give each run its own)
#
# Nodes log to $KAON_LOCAL_DIR/node-K.log (default ~/.local/share/kaon/local), appended across
# restarts with a line marking each start, so that what a node did before a crash is kept. A node
# that the cluster downs exits with code 4; `start` brings it back. They share the
# embedded Cassandra (started if needed). Cluster ports 25521.. (KAON_LOCAL_PORT), management
# ports (/alive, /ready, /metrics) 25721.. (KAON_LOCAL_MANAGEMENT_PORT), one core thread per
# node. Then: ./kaon cluster; ./kaon submit --task fashion-mnist-mlp --min-workers 2
# --max-workers 3 --watch; deploy/local/cluster.sh kill 3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${KAON_LOCAL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kaon/local}"
base="${KAON_LOCAL_PORT:-25521}"
# Derived from the cluster ports, so that clusters started side by side (benches, tests) with
# their own KAON_LOCAL_PORT do not collide on these either.
management="${KAON_LOCAL_MANAGEMENT_PORT:-$((base + 200))}"
mkdir -p "$dir"

pid_of() { [ -f "$dir/node-$1.pid" ] && cat "$dir/node-$1.pid"; }
# A killed node whose parent is gone stays a zombie until init reaps it, which in a container may
# be never; it holds no port, so it counts as dead. A recycled pid is not a node of ours: ours runs
# the kaon launcher or the installation launcher it execs (bash, until it execs java) or the CLI's JVM.
alive() {
  local pid state
  pid=$(pid_of "$1") && [ -n "$pid" ] || return 1
  state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
  # Just started by this script, it may not have exec'd the launcher yet (its command line is
  # still this script's): a child of ours is ours.
  [ "$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" = "$$" ] && return 0
  tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -e kaon.runtime.cli.KaonCli -e "$here/kaon" -e "$here/deploy/src/dist/bin/kaon"
}

start_node() {
  local k=$1; shift
  if alive "$k"; then echo "node $k: already running (pid $(pid_of "$k"))"; return; fi
  echo "=== node $k starting at $(date -u +%Y-%m-%dT%H:%M:%SZ) ===" >> "$dir/node-$k.log"
  # Each node serves /alive, /ready and /metrics on its own management port (25721 + K - 1 by
  # default; deploy/monitoring/prometheus-local.yml scrapes those).
  KAON_MANAGEMENT=on KAON_MANAGEMENT_PORT=$((management + k - 1)) \
  nohup "$here/kaon" node --devices "${KAON_LOCAL_DEVICES:-1}" --threads-per-worker 1 --port $((base + k - 1)) "$@" \
    >> "$dir/node-$k.log" 2>&1 &
  echo $! > "$dir/node-$k.pid"
  # Wait for the node to say it is up (or to die), so that the next one finds its seed.
  # Only this start's lines count: the log keeps the earlier ones.
  local from; from=$(wc -l < "$dir/node-$k.log")
  for _ in $(seq 1 240); do
    if tail -n +"$from" "$dir/node-$k.log" | grep -q "kaon node up"; then echo "node $k: up (pid $(pid_of "$k"), log $dir/node-$k.log)"; return; fi
    alive "$k" || { echo "node $k: died; see $dir/node-$k.log" >&2; tail -5 "$dir/node-$k.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "node $k: not up after 120 s; see $dir/node-$k.log" >&2; exit 1
}

case "${1:-}" in
  start)
    n="${2:-3}"
    only="${3:-}"
    "$here/kaon" tasks > /dev/null   # builds on first use, before any node starts
    # Every node lists the same seeds, node 1 first. Pekko lets only the first seed form a new
    # cluster, and only after none of the others answers: a node 1 started again while 2 and 3
    # run joins their cluster instead of forming a second one (which would run every job twice).
    seeds=()
    for k in $(seq 1 "$n"); do seeds+=(--seed "127.0.0.1:$((base + k - 1))"); done
    # Every node serves the API, trains and can host job coordinators, so that any node can be
    # lost and the cluster still be reached.
    api="${KAON_LOCAL_API_PORT:-50051}"
    for k in $(seq 1 "$n"); do
      [ -z "$only" ] || [ "$only" = "$k" ] || continue
      start_node "$k" "${seeds[@]}" --api-port $((api + k - 1))
    done ;;
  stop)
    for f in "$dir"/node-*.pid; do
      [ -e "$f" ] || continue
      k=$(basename "$f" .pid); k=${k#node-}
      if alive "$k"; then kill "$(pid_of "$k")"; echo "node $k: stopping"; fi
      rm -f "$f"
    done ;;
  kill)
    k="${2:?which node}"
    alive "$k" || { echo "node $k is not running" >&2; exit 1; }
    kill -9 "$(pid_of "$k")"
    # Gone once the kernel has torn it down (its ports free); a start right after then finds them.
    for _ in $(seq 1 100); do alive "$k" || break; sleep 0.1; done
    echo "node $k: killed" ;;
  hang|cont)
    k="${2:?which node}"
    alive "$k" || { echo "node $k is not running" >&2; exit 1; }
    kill "-$([ "$1" = hang ] && echo STOP || echo CONT)" "$(pid_of "$k")"
    echo "node $k: $([ "$1" = hang ] && echo hung || echo resumed)" ;;
  status)
    for f in "$dir"/node-*.pid; do
      [ -e "$f" ] || { echo "no nodes"; break; }
      k=$(basename "$f" .pid); k=${k#node-}
      if alive "$k"; then echo "node $k: running (pid $(pid_of "$k"))"; else echo "node $k: not running"; fi
    done ;;
  drop-keyspaces)
    shift
    # kaon.runtime.bench.DropKeyspaces says why; its driver's INFO lines are left out.
    [ $# -eq 0 ] || java -Dkaon.home="$here" -cp "$here/runtime/target/kaon-runtime.jar:$here/runtime/target/lib/*" \
      kaon.runtime.bench.DropKeyspaces "$@" 2>&1 | grep -v ' INFO ' >&2 || true ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
