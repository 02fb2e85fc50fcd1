#!/usr/bin/env bash
# dkim-bench.sh - what DKIM signing at acceptance costs: Porter's durable acceptance
# throughput with no key, with an RSA 2048 key and with RSA + Ed25519 keys for the senders'
# domain, same machine, same run.
#
#   bench/dkim-bench.sh [MSGS] [SESSIONS] [SIZE]      defaults: 5000 20 4096
#
# Each variant is a fresh Porter (relay listener on 127.0.0.1:$PORTER_PORT, default 12526,
# trusting 127.0.0.0/8, delivery off so only acceptance is measured) loaded by smtp-source
# through ../shared/bench/relay-bench.sh (SINK=external). Prints accept_mps per variant and
# the ratio to "off", and Porter's CPU per message: on a shared VM msg/s moves by tens of
# percent with the neighbours, CPU ms per message much less. PORTER=path picks the binary
# (default build/mta/porter, built by scripts/build.sh if missing). Never part of CI.
set -euo pipefail
MSGS=${1:-5000}
SESSIONS=${2:-20}
SIZE=${3:-4096}
PORT=${PORTER_PORT:-12526}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
PORTER=${PORTER:-$ROOT/build/mta/porter}
[ -x "$PORTER" ] || bash "$ROOT/scripts/build.sh"

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/porter-dkim-bench.XXXXXX")
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

# smtp-source sends From: bench-sender@example.com, so the keys are for example.com.
"$PORTER" dkim keygen example.com rsa --out "$W/rsa.key" >/dev/null
"$PORTER" dkim keygen example.com ed --algorithm ed25519-sha256 --out "$W/ed.key" >/dev/null

run_variant() {  # name, extra config
  local name=$1 extra=$2
  rm -rf "$W/data"
  cat >"$W/$name.toml" <<CONF
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
enabled = false
[limits]
max_connections_per_ip = 100000
[log]
level = "warn"
$extra
CONF
  "$PORTER" serve --config "$W/$name.toml" 2>"$W/$name.log" &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
  echo "## dkim=$name"
  SINK=external MTA_PID=$PID "$SHARED_BENCH/relay-bench.sh" "$PORT" 10027 "$MSGS" "$SIZE" "$SESSIONS" |
    tee -a "$W/out" | grep MEDIAN | sed "s/^MEDIAN/MEDIAN dkim=$name/"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

RSA=$'[[dkim]]\ndomain = "example.com"\nselector = "rsa"\nkey_file = "'"$W"'/rsa.key"'
ED=$'[[dkim]]\ndomain = "example.com"\nselector = "ed"\nalgorithm = "ed25519-sha256"\nkey_file = "'"$W"'/ed.key"'
{
  run_variant off ""
  run_variant rsa "$RSA"
  run_variant rsa+ed25519 "$RSA"$'\n'"$ED"
} | tee "$W/summary"

echo "## summary"
mps() { sed -n "s/^MEDIAN dkim=$1 .* accept_mps=\\([0-9.]*\\).*/\\1/p" "$W/summary"; }
cpu() { sed -n "s/^MEDIAN dkim=$1 .* mta_cpu_ms_per_msg=\\([0-9.]*\\).*/\\1/p" "$W/summary"; }
off=$(mps off) off_cpu=$(cpu off)
for v in rsa rsa+ed25519; do
  m=$(mps "$v") c=$(cpu "$v")
  awk -v v="$v" -v m="${m:-0}" -v o="${off:-0}" -v c="${c:-0}" -v oc="${off_cpu:-0}" \
    'BEGIN{printf "dkim=%s accept_mps=%s off=%s ratio=%.2f cost=%.0f%% cpu_ms_per_msg=%s off=%s signing_cpu_ms=%.3f\n", v, m, o, (o>0?m/o:0), (o>0?100*(1-m/o):0), c, oc, c-oc}'
done
