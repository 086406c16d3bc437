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
    /usr/bin/python3 - "$dir/result.json" "$b" "$run" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"{sys.argv[2]} run {sys.argv[3]}: msgs_per_s {r.get('msgs_per_s')} server_cpu_s_per_100k "
      f"{r.get('server_cpu_s_per_100k')} messages_lost {r.get('messages_lost')}", flush=True)
PY
  done
done | tee "$tmp/runs.txt"
/usr/bin/python3 - "$tmp/runs.txt" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    b, rest = line.split(' run ', 1)
    f = rest.split()
    rows[b][0].append(float(f[2])); rows[b][1].append(float(f[4]))
for b, (rate, cpu) in rows.items():
    print(f"median {b}: msgs_per_s {statistics.median(rate):,.0f} server_cpu_s_per_100k {statistics.median(cpu):.3f}")
PY
