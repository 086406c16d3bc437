#!/bin/bash
# Server CPU per 100k chat messages and messages/s of one or more parleyd builds,
# run alternately on the same machine (ABAB...): on a shared machine only an
# interleaved comparison says anything. Each run: a fresh server (bench/parley.yml,
# workers: 2, STARTTLS), PAIRS pairs at WINDOW, MESSAGES messages; prints one line
# per run and the medians per build.
#
#   bench/chat_ab.sh RUNS PAIRS WINDOW MESSAGES BUILD_DIR [BUILD_DIR ...]
#
# BUILD_DIR holds core/parleyd, tools/parleyctl/parleyctl, tools/parley-bench/parley-bench
# and the modules its parleyd loads.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=$1 pairs=$2 window=$3 messages=$4
shift 4
source "$repo/bench/parley_run.sh"
parley_run_init parley-chat-ab
for run in $(seq 1 "$runs"); do
  n=0
  for build in "$@"; do
    n=$((n + 1))
    b=$(cd "$build" && pwd)
    dir=$tmp/build$n-run$run  # never another build's or run's (two builds both named `build` shared one)
    start_parleyd "$b" "$dir" $((pairs * 2))
    "$b/tools/parley-bench/parley-bench" --port "$port" --tls starttls --no-progress --scram-cache "$tmp/scram" \
      --server-pid "$pid" --json "$dir/result.json" \
      chat --pairs "$pairs" --window "$window" --messages "$messages" > "$dir/bench.log" 2>&1 || true
    stop_parleyd
    /usr/bin/python3 "$repo/bench/ab_runs.py" line "$dir/result.json" "$b" "$run" msgs_per_s server_cpu_s_per_100k messages_lost
  done
done | tee "$tmp/runs.txt"
/usr/bin/python3 "$repo/bench/ab_runs.py" medians "$tmp/runs.txt"
