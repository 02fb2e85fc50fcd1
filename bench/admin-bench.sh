#!/usr/bin/env bash
# admin-bench.sh - does listing the queue stall delivery? Porter drains a queue of MSGS
# messages to smtp-sink twice in the same run: once alone, once while `porter queue list`
# (every message, --json) runs in a loop; prints both drain rates and their ratio, and how
# long each listing took.
#
#   bench/admin-bench.sh [MSGS] [SIZE]      defaults: 100000 4096
#
# Each round: Porter runs with delivery off while smtp-source queues MSGS messages (20
# sessions) through its relay listener; then it restarts with delivery on, its smarthost
# being smtp-sink on 127.0.0.1:10026, and the round's time runs from that start until
# porter_recipients_delivered_total (GET /metrics) reaches MSGS. The second round does the
# same with the listing loop running from the restart on. Throw-away data dirs under one
# mktemp dir; needs root (smtp-sink runs as nobody) and the postfix package. Never part of
# CI: numbers move with the machine.
set -euo pipefail
MSGS=${1:-100000}
SIZE=${2:-4096}
PORT=${PORTER_PORT:-12525}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORTER=${PORTER:-$ROOT/build/mta/porter}
[ -x "$PORTER" ] || bash "$ROOT/scripts/build.sh"
ulimit -n 65536 2>/dev/null || true

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/porter-admin-bench.XXXXXX")
PID="" SINK="" LISTER=""
cleanup() {
  for p in $LISTER $PID $SINK; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

config() {  # data_dir delivery_enabled
  cat >"$W/porter.toml" <<CONF
[server]
hostname = "porter-bench.example.com"
data_dir = "$1"
[[listener]]
role = "relay"
address = "127.0.0.1"
port = $PORT
[relay]
trusted_networks = ["127.0.0.0/8"]
[delivery]
enabled = $2
smarthost = "127.0.0.1:10026"
smarthost_tls = "none"
max_connections_per_destination = 20
[limits]
max_connections = 100000
max_connections_per_ip = 100000
[log]
level = "warn"
CONF
}

start_porter() {
  "$PORTER" serve --config "$W/porter.toml" 2>>"$W/porter.log" &
  PID=$!
  for _ in $(seq 1 200); do [ -S "$1/admin.sock" ] && break; sleep 0.05; done
}

stop_porter() {
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

delivered() {  # data_dir
  curl -s --unix-socket "$1/admin.sock" http://porter/metrics |
    sed -n 's/^porter_recipients_delivered_total{class="smarthost"} \([0-9]*\).*/\1/p'
}

round() {  # name with_lister
  local dir="$W/$1"
  config "$dir" false
  start_porter "$dir"
  smtp-source -c -l "$SIZE" -m "$MSGS" -s 20 -f bench@example.com -t rcpt@example.net \
    "127.0.0.1:$PORT" >/dev/null
  stop_porter
  config "$dir" true
  local t0 t1 n=0
  t0=$(date +%s.%N)
  start_porter "$dir"
  if [ "$2" = 1 ]; then
    (while :; do
       s=$(date +%s.%N)
       "$PORTER" queue list --json --limit 100000 --config "$W/porter.toml" >/dev/null 2>&1 || true
       echo "$s $(date +%s.%N)" >>"$W/lists"
     done) &
    LISTER=$!
  fi
  while [ "${n:-0}" -lt "$MSGS" ]; do sleep 0.2; n=$(delivered "$dir"); done
  t1=$(date +%s.%N)
  if [ -n "$LISTER" ]; then kill "$LISTER"; wait "$LISTER" 2>/dev/null || true; LISTER=""; fi
  stop_porter
  awk -v a="$t0" -v b="$t1" -v m="$MSGS" -v n="$1" \
    'BEGIN{printf "%s: %d messages delivered in %.1f s = %.0f msg/s\n", n, m, b-a, m/(b-a)}' |
    tee -a "$W/rounds"
}

sink_u=(); [ "$(id -u)" = 0 ] && sink_u=(-u nobody)
smtp-sink "${sink_u[@]}" 127.0.0.1:10026 1024 >/dev/null 2>&1 &
SINK=$!
echo "# porter $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $MSGS x $SIZE bytes, $(nproc) cpu"
round alone 0
round listing 1
if [ -s "$W/lists" ]; then
  awk '{d=$2-$1; s+=d; if (d>m) m=d; n++} END {printf "queue list: %d listings while delivering, mean %.2f s, max %.2f s\n", n, s/n, m}' "$W/lists"
fi
awk '/^alone:/ {a=$(NF-1)} /^listing:/ {l=$(NF-1)} END {printf "ratio listing/alone = %.2f\n", l/a}' "$W/rounds"
