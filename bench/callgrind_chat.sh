#!/bin/bash
# Instructions per chat message in parleyd, counted by callgrind: repeatable on a
# busy machine where timings are not (the same binary and inputs give the same
# count, whatever else runs). parleyd runs bench/parley.yml under callgrind; the
# load generator runs PAIRS pairs at WINDOW over STARTTLS twice, with SHORT and
# with LONG messages, each against a fresh server; the difference divided by
# LONG - SHORT is the cost of one message with the logins cancelled out.
#
#   [PARLEY_BENCH_MAM=1] bench/callgrind_chat.sh BUILD_DIR [PAIRS=20] [WINDOW=1] [SHORT=2000] [LONG=6000]
#
# BUILD_DIR holds parleyd, parleyctl, parley-bench and the modules (a Release or
# RelWithDebInfo build). Prints one line: "instructions/message N (A - B over M)";
# the callgrind outputs stay in the printed directory for callgrind_annotate.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [PAIRS] [WINDOW] [SHORT] [LONG]}" && pwd)
pairs=${2:-20}
window=${3:-1}
short=${4:-2000}
long=${5:-6000}
bench=$build/tools/parley-bench/parley-bench
source "$repo/bench/parley_run.sh"
parley_run_init parley-callgrind

# run MESSAGES: one server under callgrind, one chat run; prints the total instruction count
run() {
  local messages=$1 dir=$tmp/run$1
  start_parleyd "$build" "$dir" $((pairs * 2)) valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out"
  "$bench" --port "$port" --tls starttls --no-progress --scram-cache "$tmp/scram" --login-timeout 300 \
    chat --pairs "$pairs" --window "$window" --messages "$messages" --drain-timeout 120 > "$dir/bench.log" 2>&1
  stop_parleyd
  # A run whose logins failed or whose messages were lost counted a different
  # amount of work: its difference would be a wrong figure, not a noisy one.
  local failed lost
  failed=$(grep -Eo '"logins_failed":[0-9]+' "$dir/bench.log" | head -1 | cut -d: -f2)
  lost=$(grep -Eo '"messages_lost":-?[0-9]+' "$dir/bench.log" | head -1 | cut -d: -f2)
  if [ "${failed:-x}" != 0 ] || [ "${lost:-x}" != 0 ]; then
    echo "callgrind_chat: run of $messages messages void: logins failed ${failed:-?}, messages lost ${lost:-?} ($dir/bench.log)" >&2
    exit 1
  fi
  grep -E '^(summary|totals):' "$dir/callgrind.out" | head -1 | awk '{print $2}'
}
a=$(run "$short")
b=$(run "$long")
echo "instructions/message $(((b - a) / (long - short))) ($b - $a over $((long - short))); outputs in $tmp"
