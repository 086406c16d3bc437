#!/bin/bash
# Server CPU per login and logins/s of one or more parleyd builds, run alternately on
# the same machine (ABAB...), as chat_ab.sh does for chat. Each run: a fresh server
# (bench/parley.yml: the shipped modules, workers: 2, STARTTLS), LOGINS fresh logins
# (TCP, STARTTLS, SCRAM-SHA-256, bind, initial presence; 32 in flight, none held);
# prints one line per run and the medians per build.
#
#   bench/login_ab.sh RUNS LOGINS BUILD_DIR [BUILD_DIR ...]
#
# BUILD_DIR holds core/parleyd, tools/parleyctl/parleyctl, tools/parley-bench/parley-bench
# and the modules its parleyd loads.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=$1 logins=$2
shift 2
source "$repo/bench/parley_run.sh"
parley_run_init parley-login-ab
for run in $(seq 1 "$runs"); do
  n=0
  for build in "$@"; do
    n=$((n + 1))
    b=$(cd "$build" && pwd)
    dir=$tmp/build$n-run$run  # never another build's or run's (builds named alike: a data dir and SCRAM salts reused)
    start_parleyd "$b" "$dir" "$logins"
    "$b/tools/parley-bench/parley-bench" --port "$port" --tls starttls --no-progress --scram-cache "$tmp/scram" \
      --server-pid "$pid" --json "$dir/result.json" --login-concurrency 32 \
      connect --sessions "$logins" --hold 0 > "$dir/bench.log" 2>&1 || true
    stop_parleyd
    /usr/bin/python3 "$repo/bench/ab_runs.py" line "$dir/result.json" "$b" "$run" logins_per_s server_cpu_ms_per_login logins_failed
  done
done | tee "$tmp/runs.txt"
/usr/bin/python3 "$repo/bench/ab_runs.py" medians "$tmp/runs.txt"
