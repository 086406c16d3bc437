#!/bin/bash
# Instructions per delivered groupchat message in parleyd, counted by callgrind
# (repeatable on a busy machine, as callgrind_chat.sh). parleyd runs
# bench/parley.yml under callgrind; `parley-bench muc` fills one room with
# OCCUPANTS sessions over STARTTLS and the first sends SHORT, then (against a
# fresh server) LONG groupchat messages; the difference divided by
# (LONG - SHORT) x OCCUPANTS is the cost of one delivery, logins and joins
# cancelled out. Extra arguments go to parley-bench before the subcommand
# (--sm: every occupant enables stream management) or, after `--`, to `muc`
# (--inactive: the occupants say <inactive/>, XEP-0352).
#
#   bench/callgrind_muc.sh BUILD_DIR [OCCUPANTS=100] [SHORT=10] [LONG=60] [--sm] [-- --inactive]
#
# Prints "instructions/delivery N (A - B over M deliveries)"; the callgrind
# outputs stay in the printed directory (bench/callgrind_diff.py splits them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [OCCUPANTS] [SHORT] [LONG] [--sm] [-- --inactive]}" && pwd)
occupants=${2:-100}
short=${3:-10}
long=${4:-60}
shift $(($# < 4 ? $# : 4))
common=()
muc=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; muc=("$@"); break; fi
  common+=("$1"); shift
done
bench=$build/tools/parley-bench/parley-bench
source "$repo/bench/parley_run.sh"
parley_run_init parley-callgrind-muc

# run MESSAGES: one server under callgrind, one muc run; prints the total instruction count
run() {
  local messages=$1 dir=$tmp/run$1
  start_parleyd "$build" "$dir" "$occupants" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out"
  "$bench" --port "$port" --tls starttls --no-progress --scram-cache "$tmp/scram" --login-timeout 300 "${common[@]}" \
    muc --occupants "$occupants" --messages "$messages" --rate 20 --join-timeout 300 --drain-timeout 120 \
    "${muc[@]}" > "$dir/bench.log" 2>&1
  stop_parleyd
  grep -Eo 'deliveries_lost[^,]*' "$dir/bench.log" | head -1 >&2 || true
  grep -E '^(summary|totals):' "$dir/callgrind.out" | head -1 | awk '{print $2}'
}
a=$(run "$short")
b=$(run "$long")
deliveries=$(((long - short) * occupants))
echo "instructions/delivery $(((b - a) / deliveries)) ($b - $a over $deliveries deliveries); outputs in $tmp"
