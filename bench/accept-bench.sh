#!/usr/bin/env bash
# accept-bench.sh - Porter's durable acceptance throughput, latency and idle-connection
# memory, against Postfix measured on the same machine in the same run.
#
#   bench/accept-bench.sh [MSGS] [SESSIONS] [SIZES]      defaults: 5000 20 "4096 102400"
#
# Porter runs with a throw-away data dir, a relay listener on 127.0.0.1:$PORTER_PORT
# (default 12525) trusting 127.0.0.0/8, and answers 250 only after the WAL fsync, as in
# production. It does not deliver yet, so only acceptance is compared: Postfix's accept_mps
# (smtp-source got its last 250; Postfix has fsynced every queue file) against Porter's.
# Uses the harness in ../shared/bench (SHARED_BENCH=dir to point elsewhere). Needs root
# (Postfix) and the postfix package (scripts/install-deps.sh installs it).
# Never part of CI: numbers move with the machine.
set -euo pipefail
MSGS=${1:-5000}
SESSIONS=${2:-20}
SIZES=${3:-"4096 102400"}
PORT=${PORTER_PORT:-12525}
IDLE_CONNS=${IDLE_CONNS:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
PORTER=${PORTER:-$ROOT/build/mta/porter}
[ -x "$PORTER" ] || bash "$ROOT/scripts/build.sh"
ulimit -n 65536 2>/dev/null || true

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/porter-bench.XXXXXX")
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

cat >"$W/porter.toml" <<CONF
[server]
hostname = "porter-bench.example.com"
data_dir = "$W/data"
[[listener]]
role = "relay"
address = "127.0.0.1"
port = $PORT
[relay]
trusted_networks = ["127.0.0.0/8"]
[limits]
max_connections = 100000
max_connections_per_ip = 100000
[log]
level = "warn"
CONF
"$PORTER" serve --config "$W/porter.toml" 2>"$W/porter.log" &
PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

{
  echo "# porter $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) on 127.0.0.1:$PORT, $(nproc) cpu"
  echo "## porter idle connections ($IDLE_CONNS opened)"
  python3 "$SHARED_BENCH/idle-conns.py" --port "$PORT" --pid "$PID" --conns "$IDLE_CONNS"
  for size in $SIZES; do
    echo "## size=$size porter (smtp-source -> porter, acceptance only)"
    SINK=external MTA_PID=$PID "$SHARED_BENCH/relay-bench.sh" "$PORT" 10026 "$MSGS" "$size" "$SESSIONS"
  done
  echo "## porter acceptance latency, unloaded (one session, 500 msgs of 4096 bytes, 5 ms apart)"
  python3 "$SHARED_BENCH/smtp-latency.py" --port "$PORT" --size 4096 --count 500 --interval 0.005
  echo "## porter acceptance latency under load (probe next to smtp-source, 4096 bytes)"
  SINK=external LATENCY_PROBE=1 REPS=1 WARMUP=0 "$SHARED_BENCH/relay-bench.sh" "$PORT" 10026 "$MSGS" 4096 "$SESSIONS"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  echo "## postfix baseline, same machine, same run"
  IDLE_CONNS=$IDLE_CONNS "$SHARED_BENCH/postfix-baseline.sh" "$MSGS" "$SESSIONS" "$SIZES"
} 2>&1 | tee "$W/bench.out"

# Ratios: median accept_mps of Porter (port $PORT) over Postfix (port 10025) per size.
echo "## summary"
for size in $SIZES; do
  p=$(sed -n "s/^MEDIAN port=$PORT msgs=[0-9]* size=$size .*accept_mps=\([0-9.]*\).*/\1/p" "$W/bench.out" | head -1)
  f=$(sed -n "s/^MEDIAN port=10025 msgs=[0-9]* size=$size .*accept_mps=\([0-9.]*\).*/\1/p" "$W/bench.out" | head -1)
  awk -v s="$size" -v p="${p:-0}" -v f="${f:-0}" \
    'BEGIN{printf "size=%s porter_accept_mps=%s postfix_accept_mps=%s ratio=%.2f\n", s, p, f, (f>0 ? p/f : 0)}'
done
