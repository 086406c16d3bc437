#!/usr/bin/env bash
# bench/compare.sh - Parley side by side with Prosody and ejabberd, on this machine, with parley-bench.
#
# Installs Prosody and ejabberd from Debian if they are missing (without letting their packages start
# services), starts each server itself in the foreground with a config kept in bench/ (127.0.0.1
# only, its own free high port, registration open to the bench, SCRAM-SHA-256 with 4096 iterations,
# STARTTLS with one RSA-2048 self-signed certificate made for this run; the login scenario runs again
# with an ECDSA P-256 one, login-ec), runs the same scenarios
# against the three servers one after another, stops only the processes it started (by PID, and
# their process group, which each server gets of its own through setsid), and writes BENCHMARKS.md.
#
#   bench/compare.sh [--quick] [--runs N] [--servers "parley prosody ejabberd"] [--build-dir DIR]
#                    [--out FILE] [--no-install] [--keep-temp] [--mobile-only] [--muc-only] [--no-build]
#                    [--bench PATH] [--idle-only] [--idle-ns "N1 N2"] [--login-only]
#                    [--key rsa|ec]
#
# Parley also runs the mobile scenarios: chat with every client enabling XEP-0198 stream management
# (chat-w10-sm, next to chat-w10), and 10,000 sessions receiving presence updates, active
# (presence-active) and inactive by XEP-0352 (presence-inactive). --mobile-only runs just those (and
# chat-w10 to compare); --no-build uses the binaries already in --build-dir; --bench another
# parley-bench (an A/B against an older parleyd keeps the newer generator).
#
# Every server also runs the group chat fan-out (muc: one room of 1,000 occupants, one of them sending
# groupchat messages at a steady rate; server CPU per delivered message, delivery latency). --muc-only
# runs just that scenario on each server.
#
# --idle-only runs just the idle scenarios (TLS and, for Parley, plaintext) with --idle-ns's sizes
# (default "1000 10000"): the memory-per-session figure alone, in minutes.
#
# --key ec gives the servers the ECDSA P-256 certificate in every scenario (default rsa: the RSA-2048
# one, and the ECDSA one for login-ec only).
#
# --login-only runs just the two login scenarios (login with the RSA certificate, login-ec with the
# ECDSA one) on each server.
#
# bench/last-results.jsonl (what `bench/report.py` makes BENCHMARKS.md from) is replaced by a full run
# only: a --*-only, --quick or --key ec run leaves it as it is.
#
# --quick: small sizes and one run, for development (minutes instead of most of an hour).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
RUNS=3
SERVERS="parley prosody ejabberd"
BUILD_DIR="$REPO/build-bench"
OUT="$REPO/BENCHMARKS.md"
INSTALL=1
KEEP=0
MOBILE_ONLY=0
MUC_ONLY=0
BUILD=1
BENCH_OVERRIDE=""
IDLE_ONLY=0
LOGIN_ONLY=0
KEY=rsa
IDLE_NS_OVERRIDE=""
COMMAND_LINE="bench/compare.sh $*"

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep-temp) KEEP=1; shift ;;
    --mobile-only) MOBILE_ONLY=1; shift ;;
    --muc-only) MUC_ONLY=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --bench) BENCH_OVERRIDE=$2; shift 2 ;;
    --idle-only) IDLE_ONLY=1; shift ;;
    --idle-ns) IDLE_NS_OVERRIDE=$2; shift 2 ;;
    --login-only) LOGIN_ONLY=1; shift ;;
    --key) KEY=$2; shift 2 ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  [[ "$COMMAND_LINE" == *"--runs"* ]] || RUNS=1
  IDLE_NS="200 1000"; IDLE_HOLD=3
  LOGINS=300
  PAIRS=50; MESSAGES=20000
  LIGHT_RATE=1000; LIGHT_MESSAGES=3000
  OFF_RECEIVERS=50; OFF_SENDERS=5; OFF_MESSAGES=2000
  CHURN_SESSIONS=100; CHURN_RATE=50; CHURN_SECONDS=5
  CSI_RECEIVERS=500; CSI_SENDERS=10; CSI_UPDATES=5
  MUC_OCCUPANTS=100; MUC_MESSAGES=50; MUC_RATE=20
else
  IDLE_NS="1000 10000"; IDLE_HOLD=10
  LOGINS=2000
  PAIRS=500; MESSAGES=200000
  LIGHT_RATE=1000; LIGHT_MESSAGES=20000
  OFF_RECEIVERS=500; OFF_SENDERS=10; OFF_MESSAGES=50000
  CHURN_SESSIONS=1000; CHURN_RATE=100; CHURN_SECONDS=20
  CSI_RECEIVERS=10000; CSI_SENDERS=100; CSI_UPDATES=5
  MUC_OCCUPANTS=1000; MUC_MESSAGES=200; MUC_RATE=20
fi
[ -z "$IDLE_NS_OVERRIDE" ] || IDLE_NS=$IDLE_NS_OVERRIDE
USERS=$(printf '%s\n' $IDLE_NS "$LOGINS" $((2 * PAIRS)) $((OFF_RECEIVERS + OFF_SENDERS)) "$CHURN_SESSIONS" \
  $((CSI_RECEIVERS + CSI_SENDERS)) "$MUC_OCCUPANTS" | sort -n | tail -1)
[ "$MUC_ONLY" = 1 ] && USERS=$MUC_OCCUPANTS  # only the room's occupants need accounts
[ "$IDLE_ONLY" = 1 ] && USERS=$(printf '%s\n' $IDLE_NS | sort -n | tail -1)
[ "$LOGIN_ONLY" = 1 ] && USERS=$LOGINS  # the logins' accounts only
BENCH_THREADS=2

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes we started, and only those
STARTED=()        # PIDs (each a session and process group leader, through setsid)
SERVER_PID=""
cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  sleep 1
  for pid in "${STARTED[@]}"; do
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  done
  if [ "$KEEP" = 0 ] && [ -n "${TMP:-}" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- peers from Debian
install_peers() {
  local need=()
  dpkg -s prosody >/dev/null 2>&1 || need+=(prosody)
  dpkg -s ejabberd >/dev/null 2>&1 || need+=(ejabberd)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$INSTALL" = 1 ] || die "missing ${need[*]} (and --no-install)"
  log "installing ${need[*]} from Debian"
  # Their maintainer scripts start services through invoke-rc.d; policy-rc.d exit 101 forbids it.
  local made_policy=0 before after pid
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  before=$(pgrep -d ' ' -f 'prosody|beam.smp|epmd' || true)
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  # Whatever the installation started anyway, we started: stop exactly those processes.
  after=$(pgrep -d ' ' -f 'prosody|beam.smp|epmd' || true)
  for pid in $after; do
    if [[ " $before " != *" $pid "* ]] && [ "$pid" != "$$" ]; then
      log "the package installation left PID $pid running ($(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)): stopping it"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
}

# ---------------------------------------------------------------- our binaries
build_parley() {
  PARLEYD="$BUILD_DIR/core/parleyd"
  PARLEYCTL="$BUILD_DIR/tools/parleyctl/parleyctl"
  BENCH="$BUILD_DIR/tools/parley-bench/parley-bench"
  # Always through ninja: stale binaries or modules would measure old code.
  [ -z "$BENCH_OVERRIDE" ] || BENCH=$BENCH_OVERRIDE
  if [ "$BUILD" = 0 ]; then
    log "using the binaries in $BUILD_DIR as they are (--no-build); parley-bench: $BENCH"
    return 0
  fi
  log "building parleyd, parleyctl, parley-bench and the modules (RelWithDebInfo) in $BUILD_DIR"
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  ninja -C "$BUILD_DIR" -j2 parleyd parleyctl parley-bench parley_modules >&2
}

# Stream management and client state indication (Parley: its default modules; bench/parley.yml).
run_mobile() {
  local run
  stop_server; start_server parley 2
  for run in $(seq 1 "$RUNS"); do
    bench parley chat-w10 chat --pairs "$PAIRS" --window 10 --messages "$MESSAGES"
    bench parley chat-w10-sm chat --pairs "$PAIRS" --window 10 --messages "$MESSAGES" --sm
  done
  for run in $(seq 1 "$RUNS"); do
    stop_server; start_server parley 2
    bench parley presence-active presence --receivers "$CSI_RECEIVERS" --senders "$CSI_SENDERS" --updates "$CSI_UPDATES" \
      --first 0 --drain-timeout 120
    stop_server; start_server parley 2
    bench parley presence-inactive presence --receivers "$CSI_RECEIVERS" --senders "$CSI_SENDERS" \
      --updates "$CSI_UPDATES" --first 0 --drain-timeout 120 --inactive
  done
  stop_server
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # port pid seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- servers
# start_server NAME [WORKERS]: sets SERVER_PID and PORT[NAME]
declare -A PORT
start_server() {
  local name=$1 workers=${2:-2} dir="$TMP/$1" pid
  mkdir -p "$dir/data"
  [ -n "${PORT[$name]:-}" ] || PORT[$name]=$(free_port)
  case "$name" in
    parley)
      [ -n "${PORT[parley-plain]:-}" ] || PORT[parley-plain]=$(free_port)
      sed -e "s|@DIR@|$dir|g; s|@PORT@|${PORT[$name]}|; s|@PLAIN_PORT@|${PORT[parley-plain]}|; s|@WORKERS@|$workers|" \
          -e "s|@CERT_AND_KEY@|$CERT/both.pem|" \
        "$REPO/bench/parley.yml" > "$dir/parley.yml"
      setsid "$PARLEYD" --config "$dir/parley.yml" >> "$dir/server.log" 2>&1 &
      pid=$! ;;
    prosody)
      sed -e "s|@DIR@|$dir|g; s|@PORT@|${PORT[$name]}|; s|@CERT@|$CERT/cert.pem|; s|@KEY@|$CERT/key.pem|" \
        "$REPO/bench/prosody.cfg.lua" > "$dir/prosody.cfg.lua"
      setsid prosody --config "$dir/prosody.cfg.lua" -F >> "$dir/server.log" 2>&1 &
      pid=$! ;;
    ejabberd)
      sed -e "s|@PORT@|${PORT[$name]}|; s|@CERT_AND_KEY@|$CERT/both.pem|" \
        "$REPO/bench/ejabberd.yml" > "$dir/ejabberd.yml"
      mkdir -p "$dir/spool"
      # erl straight, not ejabberdctl: no su to another user (whose child would hide the PID) and no
      # node name, so no epmd daemon is left behind. erl execs beam.smp: $! is the VM itself.
      (cd "$dir" && ERL_LIBS=/usr/lib/x86_64-linux-gnu EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" \
        EJABBERD_LOG_PATH="$dir/ejabberd.log" HOME="$dir" \
        exec setsid erl +K true +P 1000000 -noinput -mnesia dir "\"$dir/spool\"" -s ejabberd) >> "$dir/server.log" 2>&1 &
      pid=$! ;;
    *) die "unknown server $name" ;;
  esac
  STARTED+=("$pid")
  SERVER_PID=$pid
  wait_port "${PORT[$name]}" "$pid" 60 || { tail -20 "$dir/server.log" >&2; die "$name did not start (log: $dir/server.log)"; }
  sleep 2  # let it finish starting (ejabberd opens the port before every module is up)
  log "$name running: PID $pid ($(cat /proc/$pid/comm)), port ${PORT[$name]}, RSS $(awk '/VmRSS/{print $2}' /proc/$pid/status) KiB"
}

stop_server() {
  local pid=$SERVER_PID i
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "PID $pid ignores SIGTERM: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SERVER_PID=""
}

# bench NAME TAG ARGS...: one parley-bench run; its JSON line goes to results.jsonl. BENCH_PORT and
# BENCH_TLS override the server's port and starttls.
bench() {
  local name=$1 tag=$2
  shift 2
  local rc=0 lines_before
  lines_before=$(wc -l < "$RESULTS")
  "$BENCH" --port "${BENCH_PORT:-${PORT[$name]}}" --tls "${BENCH_TLS:-starttls}" --server-pid "$SERVER_PID" --label "$name" --tag "$tag" --threads "$BENCH_THREADS" \
    --json "$RESULTS" --scram-cache "$TMP/$name.scram" --login-timeout 120 --no-progress "$@" \
    >> "$TMP/bench.log" 2>&1 || rc=$?
  local line
  if [ "$(wc -l < "$RESULTS")" = "$lines_before" ]; then
    log "  $name $tag (exit $rc): no result; see $TMP/bench.log"
    return 0
  fi
  line=$(tail -1 "$RESULTS")
  log "  $name $tag (exit $rc): $(echo "$line" | /usr/bin/python3 -c '
import json,sys
d=json.loads(sys.stdin.read())
keys=["deliveries","deliveries_lost","server_cpu_us_per_delivery","created","existed","failed","logins_ok","logins_failed","logins_per_s","rss_kib_per_session","server_cpu_ms_per_login","msgs_per_s","lat_p99_ms","messages_lost","server_cpu_s_per_100k","updates_written_during","updates_written","receiver_reads","server_cpu_s_all","sm_acks_sent","status","failures"]
print(" ".join(f"{k}={d[k]}" for k in keys if k in d))' 2>/dev/null || echo '?')"
}

register_users() {
  local name=$1
  if [ "$name" = parley ]; then
    bench parley register register --users "$USERS" --parleyctl "$PARLEYCTL" --parley-config "$TMP/parley/parley.yml" --jobs 2
  else
    bench "$name" register register --users "$USERS" --login-concurrency 16
  fi
}

# Group chat fan-out: a fresh server per run (the room and its joins start from nothing).
run_muc() {
  local name=$1 run
  for run in $(seq 1 "$RUNS"); do
    stop_server; start_server "$name" 2
    bench "$name" muc muc --occupants "$MUC_OCCUPANTS" --messages "$MUC_MESSAGES" --rate "$MUC_RATE" \
      --room "bench$run" --join-timeout 300 --drain-timeout 60
  done
  stop_server
}

# The logins: with the RSA-2048 certificate (login), then with the ECDSA P-256 one (login-ec), each
# on a fresh server. Leaves no server running.
run_logins() {
  local name=$1 run
  stop_server; CERT="$TMP/cert" start_server "$name" 2
  for run in $(seq 1 "$RUNS"); do bench "$name" login connect --sessions "$LOGINS" --hold 0; done
  stop_server; CERT="$TMP/cert-ec" start_server "$name" 2
  for run in $(seq 1 "$RUNS"); do bench "$name" login-ec connect --sessions "$LOGINS" --hold 0; done
  stop_server
}

run_server() {
  local name=$1 run n
  log "== $name"
  start_server "$name" 2
  register_users "$name"
  if [ "$MUC_ONLY" = 1 ]; then
    run_muc "$name"
    return 0
  fi
  if [ "$MOBILE_ONLY" = 1 ]; then
    [ "$name" = parley ] && run_mobile
    stop_server
    return 0
  fi
  if [ "$LOGIN_ONLY" = 1 ]; then
    run_logins "$name"
    return 0
  fi
  for run in $(seq 1 "$RUNS"); do
    for n in $IDLE_NS; do
      stop_server; start_server "$name" 2   # a fresh process: its RSS before is the baseline
      bench "$name" "idle-$n" connect --sessions "$n" --hold "$IDLE_HOLD"
      if [ "$name" = parley ]; then
        stop_server; start_server parley 2
        BENCH_PORT=${PORT[parley-plain]} BENCH_TLS=none bench parley "idle-plain-$n" connect --sessions "$n" --hold "$IDLE_HOLD"
      fi
    done
  done
  if [ "$IDLE_ONLY" = 1 ]; then
    stop_server
    return 0
  fi
  run_logins "$name"
  start_server "$name" 2
  for run in $(seq 1 "$RUNS"); do bench "$name" chat-w1 chat --pairs "$PAIRS" --window 1 --messages "$MESSAGES"; done
  for run in $(seq 1 "$RUNS"); do bench "$name" chat-w10 chat --pairs "$PAIRS" --window 10 --messages "$MESSAGES"; done
  for run in $(seq 1 "$RUNS"); do
    bench "$name" chat-light chat --pairs "$PAIRS" --window 1 --rate "$LIGHT_RATE" --messages "$LIGHT_MESSAGES"
  done
  for run in $(seq 1 "$RUNS"); do
    bench "$name" offline offline --receivers "$OFF_RECEIVERS" --senders "$OFF_SENDERS" --messages "$OFF_MESSAGES" --drain-timeout 60
  done
  for run in $(seq 1 "$RUNS"); do
    bench "$name" churn churn --sessions "$CHURN_SESSIONS" --rate "$CHURN_RATE" --duration "$CHURN_SECONDS"
  done
  stop_server
  run_muc "$name"
  if [ "$name" = parley ]; then
    log "== parley: stream management, client state indication"
    run_mobile
    log "== parley with workers: 1"
    start_server parley 1
    for run in $(seq 1 "$RUNS"); do bench parley chat-w10-workers1 chat --pairs "$PAIRS" --window 10 --messages "$MESSAGES"; done
    for run in $(seq 1 "$RUNS"); do bench parley chat-w1-workers1 chat --pairs "$PAIRS" --window 1 --messages "$MESSAGES"; done
    stop_server
  fi
}

# ---------------------------------------------------------------- main
[ "$(id -u)" = 0 ] || log "warning: not root; apt-get and the file limit may not work"
install_peers
build_parley
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d /tmp/parley-compare.XXXXXX)
RESULTS="$TMP/results.jsonl"
: > "$RESULTS"
mkdir -p "$TMP/cert"
mkdir -p "$TMP/cert-ec"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/cert/key.pem" -out "$TMP/cert/cert.pem" -days 7 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/cert-ec/key.pem" \
  -out "$TMP/cert-ec/cert.pem" -days 7 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
for c in cert cert-ec; do
  cat "$TMP/$c/cert.pem" "$TMP/$c/key.pem" > "$TMP/$c/both.pem"
  chmod 644 "$TMP/$c/"*.pem
done
CERT="$TMP/cert"  # the servers' certificate, unless a start says otherwise
case "$KEY" in
  rsa) ;;
  ec) CERT="$TMP/cert-ec" ;;
  *) die "--key: rsa or ec, not $KEY" ;;
esac

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
T0=$SECONDS
log "results in $TMP (users: $USERS, runs: $RUNS, quick: $QUICK)"
for name in $SERVERS; do run_server "$name"; done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

export RESULTS COMMAND_LINE STARTED_AT LOAD_BEFORE LOAD_AFTER QUICK RUNS SERVERS BENCH_THREADS
export IDLE_NS LOGINS PAIRS MESSAGES LIGHT_RATE LIGHT_MESSAGES OFF_RECEIVERS OFF_SENDERS OFF_MESSAGES
export CHURN_SESSIONS CHURN_RATE CHURN_SECONDS IDLE_HOLD CSI_RECEIVERS CSI_SENDERS CSI_UPDATES
export MUC_OCCUPANTS MUC_MESSAGES MUC_RATE
export ELAPSED_MIN=$(( (SECONDS - T0 + 59) / 60 ))
export PARLEY_VERSION="$("$PARLEYD" --version 2>/dev/null | head -1)"
export PROSODY_VERSION="$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)"
export EJABBERD_VERSION="$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)"
export ERLANG_VERSION="$(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null)"
export LUA_VERSION="$(dpkg-query -W -f='${Version}' lua5.4 2>/dev/null)"
export OPENSSL_VERSION="$(openssl version)"
export CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
export NPROC="$(nproc)"
export MEM_TOTAL="$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
export KERNEL="$(uname -r)"
/usr/bin/python3 -c '
import json, os
keys = """COMMAND_LINE STARTED_AT LOAD_BEFORE LOAD_AFTER QUICK RUNS SERVERS BENCH_THREADS IDLE_NS LOGINS PAIRS MESSAGES
LIGHT_RATE LIGHT_MESSAGES OFF_RECEIVERS OFF_SENDERS OFF_MESSAGES CHURN_SESSIONS CHURN_RATE CHURN_SECONDS IDLE_HOLD
CSI_RECEIVERS CSI_SENDERS CSI_UPDATES MUC_OCCUPANTS MUC_MESSAGES MUC_RATE
ELAPSED_MIN PARLEY_VERSION PROSODY_VERSION EJABBERD_VERSION ERLANG_VERSION LUA_VERSION OPENSSL_VERSION CPU_MODEL
NPROC MEM_TOTAL KERNEL""".split()
print(json.dumps({"_context": {k: os.environ.get(k, "") for k in keys}}))' >> "$RESULTS"
/usr/bin/python3 "$REPO/bench/report.py" "$RESULTS" > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
if [ "$QUICK$MOBILE_ONLY$MUC_ONLY$IDLE_ONLY$LOGIN_ONLY" = 00000 ] && [ "$KEY" = rsa ]; then
  cp "$RESULTS" "$REPO/bench/last-results.jsonl"
  log "wrote $OUT (raw results: bench/last-results.jsonl) in $ELAPSED_MIN min"
else
  cp "$RESULTS" "$OUT.jsonl"
  log "wrote $OUT (raw results: $OUT.jsonl; bench/last-results.jsonl is a full run's) in $ELAPSED_MIN min"
fi
