#!/bin/bash
# Instructions per login in parleyd, counted by callgrind (repeatable where timings
# are not). parleyd runs bench/parley.yml under callgrind; the load generator logs
# SHORT and then LONG fresh sessions in (TCP, TLS as given, SCRAM-SHA-256, bind,
# initial presence; none held), each against a fresh server; the difference divided
# by LONG - SHORT is the cost of one login with the start-up cancelled out.
#
#   bench/callgrind_login.sh BUILD_DIR [TLS=starttls|none] [SHORT=200] [LONG=600]
#
# BUILD_DIR holds parleyd, parleyctl, parley-bench and the modules. Prints one line:
# "instructions/login N (A - B over M)"; the callgrind outputs stay in the printed
# directory for callgrind_annotate (run<LONG>/callgrind.out against run<SHORT>/...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [TLS] [SHORT] [LONG]}" && pwd)
tls=${2:-starttls}
short=${3:-200}
long=${4:-600}
bench=$build/tools/parley-bench/parley-bench
source "$repo/bench/parley_run.sh"
parley_run_init parley-callgrind-login

# run LOGINS: one server under callgrind, LOGINS logins; prints the total instruction count
run() {
  local logins=$1 dir=$tmp/run$1 plain_port
  start_parleyd "$build" "$dir" "$long" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out"
  # bench/parley.yml's second listener does not require STARTTLS: the plaintext logins.
  plain_port=$(grep -Eo 'port: [0-9]+' "$dir/parley.yml" | sed -n 2p | cut -d' ' -f2)
  local p=$port
  if [ "$tls" = none ]; then p=$plain_port; fi
  "$bench" --port "$p" --tls "$tls" --no-progress --scram-cache "$tmp/scram" --login-timeout 300 \
    --login-concurrency 8 connect --sessions "$logins" --hold 0 > "$dir/bench.log" 2>&1
  stop_parleyd
  local failed
  failed=$(grep -Eo '"logins_failed":[0-9]+' "$dir/bench.log" | head -1 | cut -d: -f2)
  if [ "${failed:-x}" != 0 ]; then
    echo "callgrind_login: run of $logins logins void: logins failed ${failed:-?} ($dir/bench.log)" >&2
    exit 1
  fi
  grep -E '^(summary|totals):' "$dir/callgrind.out" | head -1 | awk '{print $2}'
}
a=$(run "$short")
b=$(run "$long")
echo "instructions/login $(((b - a) / (long - short))) ($b - $a over $((long - short))); outputs in $tmp"
