#!/usr/bin/env bash
# accept-bench.sh - Porter's durable acceptance throughput, latency and idle-connection
# memory, against Postfix measured on the same machine in the same run.
#
#   bench/accept-bench.sh [MSGS] [SESSIONS] [SIZES]      defaults: 5000 20 "4096 102400"
#
# Porter runs with a throw-away data dir, a relay listener on 127.0.0.1:$PORTER_PORT
# (default 12525) trusting 127.0.0.0/8, answers 250 only after the WAL fsync, as in
# production, and relays to the sink on 127.0.0.1:10026. ROUTE=mx (default) looks up the
# recipient domain's MX through a DNS server on 127.0.0.1 (tests/dns/fake_dns_server.py,
# example.net MX -> 127.0.0.1), as real delivery does; ROUTE=smarthost sends everything to
# the sink as its smarthost, the Postfix baseline's own path (relayhost = [127.0.0.1]:10026).
# Compared: accept_mps (smtp-source got its last 250; both MTAs have fsynced) and e2e_mps
# (the sink has all). Idle memory: Porter with IDLE_CONNS (1000) connections; Postfix with
# the baseline's default 200, because its 100 smtpd processes leave the rest in the
# listen backlog, where each further connect waits out a 2 s timeout.
# Uses the harness in ../shared/bench (SHARED_BENCH=dir to point elsewhere). Needs root
# (Postfix) and the postfix package (scripts/install-deps.sh installs it).
# Never part of CI: numbers move with the machine.
set -euo pipefail
MSGS=${1:-5000}
SESSIONS=${2:-20}
SIZES=${3:-"4096 102400"}
PORT=${PORTER_PORT:-12525}
IDLE_CONNS=${IDLE_CONNS:-1000}
ROUTE=${ROUTE:-mx}
DNS_PORT=${DNS_PORT:-15353}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
PORTER=${PORTER:-$ROOT/build/mta/porter}
[ -x "$PORTER" ] || bash "$ROOT/scripts/build.sh"
ulimit -n 65536 2>/dev/null || true

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/porter-bench.XXXXXX")
PID=""
DNS_PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null || true
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
[delivery]
max_connections_per_destination = 20   # Postfix's default_destination_concurrency_limit
$(if [ "$ROUTE" = smarthost ]; then
  printf 'smarthost = "127.0.0.1:10026"\nsmarthost_tls = "none"\n'
else
  printf 'dns_servers = ["127.0.0.1:%s"]\nremote_port = 10026\n' "$DNS_PORT"
fi)
[limits]
max_connections = 100000
max_connections_per_ip = 100000
[log]
level = "warn"
CONF
if [ "$ROUTE" = mx ]; then
  cat >"$W/zone" <<ZONE
\$ORIGIN example.net.
\$TTL 3600
@     IN SOA  ns hostmaster 1 7200 900 1209600 300
@     IN MX   10 sink
sink  IN A    127.0.0.1
ZONE
  /usr/bin/python3 "$ROOT/tests/dns/fake_dns_server.py" --zone "$W/zone" --port "$DNS_PORT" \
    >"$W/dns.out" 2>&1 &
  DNS_PID=$!
  for _ in $(seq 1 100); do grep -q ready "$W/dns.out" 2>/dev/null && break; sleep 0.05; done
fi
"$PORTER" serve --config "$W/porter.toml" 2>"$W/porter.log" &
PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

{
  echo "# porter $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) on 127.0.0.1:$PORT, route=$ROUTE, $(nproc) cpu"
  echo "## porter idle connections ($IDLE_CONNS opened)"
  python3 "$SHARED_BENCH/idle-conns.py" --port "$PORT" --pid "$PID" --conns "$IDLE_CONNS"
  for size in $SIZES; do
    echo "## size=$size porter (smtp-source -> porter -> smtp-sink)"
    MTA_PID=$PID "$SHARED_BENCH/relay-bench.sh" "$PORT" 10026 "$MSGS" "$size" "$SESSIONS"
  done
  echo "## porter acceptance latency, unloaded (one session, 500 msgs of 4096 bytes, 5 ms apart)"
  sink_u=(); [ "$(id -u)" = 0 ] && sink_u=(-u nobody)
  smtp-sink "${sink_u[@]}" 127.0.0.1:10026 1024 >/dev/null 2>&1 &
  SINKPID=$!
  sleep 0.3
  python3 "$SHARED_BENCH/smtp-latency.py" --port "$PORT" --size 4096 --count 500 --interval 0.005
  kill "$SINKPID"; wait "$SINKPID" 2>/dev/null || true
  echo "## porter acceptance latency under load (probe next to smtp-source, 4096 bytes)"
  LATENCY_PROBE=1 REPS=1 WARMUP=0 "$SHARED_BENCH/relay-bench.sh" "$PORT" 10026 "$MSGS" 4096 "$SESSIONS"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  echo "## postfix baseline, same machine, same run"
  "$SHARED_BENCH/postfix-baseline.sh" "$MSGS" "$SESSIONS" "$SIZES"
} 2>&1 | tee "$W/bench.out"

# Ratios of the medians, Porter (port $PORT) over Postfix (port 10025), per size and metric.
echo "## summary"
median() {  # port size metric
  sed -n "s/^MEDIAN port=$1 msgs=[0-9]* size=$2 .* $3=\([0-9.]*\).*/\1/p" "$W/bench.out" | head -1
}
for size in $SIZES; do
  for metric in accept_mps e2e_mps; do
    p=$(median "$PORT" "$size" "$metric"); f=$(median 10025 "$size" "$metric")
    awk -v s="$size" -v m="$metric" -v p="${p:-0}" -v f="${f:-0}" \
      'BEGIN{printf "size=%s %s porter=%s postfix=%s ratio=%.2f\n", s, m, p, f, (f>0 ? p/f : 0)}'
  done
done
