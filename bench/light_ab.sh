#!/bin/bash
# Light load, A/B: server CPU per 100k messages and latency at 1,000 messages/s offered
# (500 pairs, window 1, 20,000 messages, STARTTLS, bench/parley.yml), a fresh server per
# run, the builds interleaved RUNS times (the logins are outside the measured phase).
#
#   bench/light_ab.sh BUILD_A BUILD_B [RUNS=3]
#
# Prints one line per run: the build, server_cpu_s_per_100k, lat_p99_ms, lat_p50_ms,
# messages_lost. BUILD_* hold parleyd, parleyctl, parley-bench and the modules.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bench/parley_run.sh"
parley_run_init parley-light-ab
runs=${3:-3}
for r in $(seq "$runs"); do
  i=0
  for b in "$1" "$2"; do
    i=$((i + 1))
    b=$(cd "$b" && pwd)
    start_parleyd "$b" "$tmp/run-$r-$i" 1000
    "$b/tools/parley-bench/parley-bench" --port "$port" --tls starttls --no-progress --scram-cache "$tmp/scram-$i" \
      --server-pid "$pid" chat --pairs 500 --window 1 --rate 1000 --messages 20000 --drain-timeout 60 \
      > "$tmp/bench.log" 2>&1
    stop_parleyd
    echo "build $i ($b) run $r" \
      "$(grep -o '"server_cpu_s_per_100k":[0-9.]*' "$tmp/bench.log")" \
      "$(grep -o '"lat_p99_ms":[0-9.]*' "$tmp/bench.log")" \
      "$(grep -o '"lat_p50_ms":[0-9.]*' "$tmp/bench.log")" \
      "$(grep -o '"messages_lost":[0-9]*' "$tmp/bench.log")"
  done
done
