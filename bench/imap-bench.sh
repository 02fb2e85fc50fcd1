#!/usr/bin/env bash
# imap-bench.sh - Porter's IMAP SEARCH and FETCH on a 100,000-message INBOX and its POP3
# download of a 10,000-message maildrop, against Dovecot from Debian's packages serving the
# same mail on the same machine in the same run.
#
#   bench/imap-bench.sh [MSGS] [POP_MSGS]      defaults: 100000 10000
#
# Both servers run throw-away instances under one mktemp dir, on loopback, over implicit TLS
# with the same self-signed RSA 2048 certificate: Porter's imaps and pop3s listeners
# (PORTER_IMAPS 12993, PORTER_POP3S 12995), Dovecot's imaps and pop3s inet_listeners
# (DOVECOT_IMAPS 13993, DOVECOT_POP3S 13995) from its own config file and base_dir, Maildir
# under the temp dir, users in a passwd-file. /etc/dovecot and the system service are never
# used; the dovecot-imapd and dovecot-pop3d packages are installed if missing, with service
# starts refused through policy-rc.d.
#
# The client is bench/imap_bench_client.py (python3 only; see its header). The same
# deterministic corpus goes into Porter by IMAP APPEND with LITERAL+ (LOAD_CONNS connections,
# 8, each with 8 commands in flight; a supported way in that keeps each message's internal
# date) and into Dovecot as Maildir files written directly, mtime = the same internal date
# (Dovecot's own APPEND ran at 75-400 msg/s here, fsyncs per message). Both then
# get the same 84 % of the INBOX marked \Seen by UID STORE, and LOAD_SAMPLE (1000) more
# messages APPENDed to a mailbox of their own, so the load rates compare. Measured, after a
# SELECT:
#   - UID SEARCH FROM, SUBJECT, SINCE, UNSEEN and two combinations: a first run of each
#     (reported apart as "1st": it shows cold caches, e.g. Dovecot filling its cache file),
#     then REPS (3) runs
#     alternating Porter and Dovecot; the time is from sending the command to its tagged OK;
#     each count of matches is checked against the count the corpus itself predicts;
#   - UID FETCH 1:* (BODY.PEEK[HEADER]) of the whole INBOX, the same way;
#   - POP3 (second user, POP_MSGS messages): USER/PASS, STAT, then RETR 1..N one at a time
#     (one round trip each, as poplib does) and pipelined 100 at a time; the time
#     runs from the first RETR to the end of the last message. First session apart, medians
#     of REPS.
# Prints a table: median ms for Porter and Dovecot and the ratio Porter/Dovecot (below 1:
# Porter is faster), plus load times. PORTER=path picks the binary (default
# build/mta/porter, built by scripts/build.sh if missing). PERF_OUT=file records Porter with
# perf (call graphs) during the SEARCH phase. Needs root (Dovecot's master). Never part of
# CI: numbers move with the machine.
set -euo pipefail
MSGS=${1:-100000}
POP_MSGS=${2:-10000}
REPS=${REPS:-3}
LOAD_CONNS=${LOAD_CONNS:-8}
LOAD_SAMPLE=${LOAD_SAMPLE:-1000}
PORTER_IMAPS=${PORTER_IMAPS:-12993}
PORTER_POP3S=${PORTER_POP3S:-12995}
DOVECOT_IMAPS=${DOVECOT_IMAPS:-13993}
DOVECOT_POP3S=${DOVECOT_POP3S:-13995}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORTER=${PORTER:-$ROOT/build/mta/porter}
CLIENT="/usr/bin/python3 $ROOT/bench/imap_bench_client.py"
PASSWORD=bench-secret
[ -x "$PORTER" ] || bash "$ROOT/scripts/build.sh"

# Bench-only dependency: Debian's Dovecot, installed without starting its system service.
if [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/pop3 ]; then
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    dovecot-imapd dovecot-pop3d >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/porter-imap-bench.XXXXXX")
chmod 755 "$W"  # Dovecot's mail processes run as nobody and must reach the Maildirs
PID=""
DOVECOT_PID=""
PERF_PID=""
cleanup() {
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null || true
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -n "$DOVECOT_PID" ] && kill "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on port $1" >&2
  return 1
}

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 644 "$W/key.pem"  # Dovecot reads it as root, Porter too; the key is throw-away

# ---- Porter --------------------------------------------------------------------------------
HASH=$(printf '%s\n' "$PASSWORD" | "$PORTER" passwd)
cat >"$W/porter.toml" <<CONF
[server]
hostname = "porter-bench.example.com"
data_dir = "$W/porter-data"
[tls]
cert = "$W/cert.pem"
key = "$W/key.pem"
[[listener]]
role = "imaps"
address = "127.0.0.1"
port = $PORTER_IMAPS
[[listener]]
role = "pop3s"
address = "127.0.0.1"
port = $PORTER_POP3S
[relay]
local_domains = ["example.com"]
[[user]]
name = "bench"
password = "$HASH"
addresses = ["bench@example.com"]
[[user]]
name = "popbench"
password = "$HASH"
addresses = ["popbench@example.com"]
[delivery]
enabled = false
[inbound]
spf = "off"
dkim = false
dmarc = "off"
[limits]
max_connections_per_ip = 1000
[log]
level = "warn"
CONF
"$PORTER" serve --config "$W/porter.toml" 2>"$W/porter.log" &
PID=$!

# ---- Dovecot -------------------------------------------------------------------------------
mkdir -p "$W/dovecot/run" "$W/dovecot/state" "$W/dovecot/mail"
chown nobody:nogroup "$W/dovecot/mail"
for u in bench popbench; do
  echo "$u:{PLAIN}$PASSWORD:65534:65534::$W/dovecot/mail/$u"
done >"$W/dovecot/passwd"
cat >"$W/dovecot/dovecot.conf" <<CONF
# Throw-away instance: nothing from /etc/dovecot is read.
base_dir = $W/dovecot/run
state_dir = $W/dovecot/state
instance_name = porter-imap-bench
log_path = $W/dovecot/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <$W/cert.pem
ssl_key = <$W/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $W/dovecot/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $W/dovecot/passwd
}
mail_location = maildir:~/Maildir
first_valid_uid = 1000
mail_max_userip_connections = 100
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $DOVECOT_IMAPS
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = $DOVECOT_POP3S
    ssl = yes
  }
}
# The mail processes run as nobody: let them report to the stats service.
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
CONF
TZ=UTC /usr/sbin/dovecot -F -c "$W/dovecot/dovecot.conf" 2>"$W/dovecot/stderr" &
DOVECOT_PID=$!
wait_port "$PORTER_IMAPS"
wait_port "$DOVECOT_IMAPS"

rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -n "$(git -C "$ROOT" status --porcelain -- mta core queue policy dns 2>/dev/null)" ] && rev="$rev+dirty"
{
  echo "# porter: source $rev, binary $PORTER built $(date -r "$PORTER" +%FT%T); dovecot $(dovecot --version | cut -d' ' -f1); $(nproc) cpu; TLS on both"
  echo "# msgs=$MSGS pop_msgs=$POP_MSGS reps=$REPS load_conns=$LOAD_CONNS dir=$W"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  # Porter: IMAP APPEND, a supported way in that keeps each message's internal date.
  $CLIENT load --server porter --port "$PORTER_IMAPS" --user bench --password "$PASSWORD" \
    --count "$MSGS" --seed 1 --conns "$LOAD_CONNS"
  $CLIENT load --server porter --port "$PORTER_IMAPS" --user popbench --password "$PASSWORD" \
    --count "$POP_MSGS" --seed 2 --conns "$LOAD_CONNS"
  # Dovecot: the same messages written as Maildir files; its APPEND (75-400 msg/s here,
  # several fsyncs per message) would take longer than the whole benchmark.
  $CLIENT maildir --user bench --dir "$W/dovecot/mail/bench/Maildir" --count "$MSGS" --seed 1
  $CLIENT maildir --user popbench --dir "$W/dovecot/mail/popbench/Maildir" --count "$POP_MSGS" --seed 2
  chown -R nobody:nogroup "$W/dovecot/mail"
  for server in porter dovecot; do
    port=$PORTER_IMAPS; [ $server = dovecot ] && port=$DOVECOT_IMAPS
    $CLIENT seen --server $server --port "$port" --user bench --password "$PASSWORD" \
      --count "$MSGS" --seed 1
  done
  # The same APPEND load on both, into a mailbox of its own: the rates compare.
  for server in porter dovecot; do
    port=$PORTER_IMAPS; [ $server = dovecot ] && port=$DOVECOT_IMAPS
    $CLIENT load --server $server --port "$port" --user bench --password "$PASSWORD" \
      --mailbox Sample --count "$LOAD_SAMPLE" --seed 3 --conns "$LOAD_CONNS"
  done
  echo "# store size: porter $(du -sm "$W/porter-data" | cut -f1) MiB, dovecot $(du -sm "$W/dovecot/mail" | cut -f1) MiB"
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -g -F 999 -p "$PID" -o "$PERF_OUT" 2>/dev/null &
    PERF_PID=$!
    sleep 1
  fi
  $CLIENT search --porter "$PORTER_IMAPS" --dovecot "$DOVECOT_IMAPS" --user bench \
    --password "$PASSWORD" --count "$MSGS" --seed 1 --reps "$REPS"
  if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
  fi
  $CLIENT fetch --porter "$PORTER_IMAPS" --dovecot "$DOVECOT_IMAPS" --user bench \
    --password "$PASSWORD" --count "$MSGS" --reps "$REPS"
  $CLIENT pop3 --porter "$PORTER_POP3S" --dovecot "$DOVECOT_POP3S" --user popbench \
    --password "$PASSWORD" --count "$POP_MSGS" --reps "$REPS"
  echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$W/results"

echo "## summary (ms, median of $REPS; ratio = porter/dovecot, below 1 means Porter is faster)"
awk '
  /^RESULT op=(search|fetch|pop3) / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, f, "="); kv[f[1]] = f[2] }
    q = kv["query"]; s = kv["server"]
    if (!(q in seen)) { seen[q] = 1; order[++n] = q }
    med[q, s] = kv["median_ms"]; first[q, s] = kv["first_ms"]
    ok[q, s] = (kv["matches"] == kv["expected"]) ? kv["matches"] : kv["matches"] "!=" kv["expected"]
  }
  /^RESULT op=(load|maildir|seen) / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, f, "="); kv[f[1]] = f[2] }
    if (kv["op"] == "load") load[kv["user"] "/" kv["mailbox"], kv["server"]] = kv["msgs"] " msgs " kv["seconds"] " s (" kv["msgs_per_s"] "/s)"
    else if (kv["op"] == "maildir") maildir[kv["user"]] = kv["msgs"] " msgs " kv["seconds"] " s"
    else { store[kv["server"]] = kv["store_seconds"] " s"; sel[kv["server"]] = kv["first_select_seconds"] " s" }
  }
  END {
    printf "%-36s %10s %10s %7s %10s %10s  %s\n", "command", "porter", "dovecot", "ratio", \
      "porter_1st", "dovecot_1st", "matches (porter / dovecot)"
    for (i = 1; i <= n; i++) {
      q = order[i]; pm = med[q, "porter"]; dm = med[q, "dovecot"]
      printf "%-36s %10.1f %10.1f %7.2f %10.1f %10.1f  %s / %s\n", q, pm, dm, (dm > 0 ? pm / dm : 0), \
        first[q, "porter"], first[q, "dovecot"], ok[q, "porter"], ok[q, "dovecot"]
    }
    printf "load, IMAP APPEND into Sample (same client, %s connections): porter %s, dovecot %s\n", conns, load["bench/Sample", "porter"], load["bench/Sample", "dovecot"]
    printf "load, porter by APPEND: INBOX %s; POP3 maildrop %s\n", load["bench/INBOX", "porter"], load["popbench/INBOX", "porter"]
    printf "load, dovecot Maildir files written directly: INBOX %s; POP3 maildrop %s\n", maildir["bench"], maildir["popbench"]
    printf "first SELECT after loading: porter %s, dovecot %s (builds its index)\n", sel["porter"], sel["dovecot"]
    printf "UID STORE +FLAGS.SILENT (\\Seen) of the seen set: porter %s, dovecot %s\n", store["porter"], store["dovecot"]
  }' conns="$LOAD_CONNS" "$W/results"
