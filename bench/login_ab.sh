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
    /usr/bin/python3 - "$dir/result.json" "$b" "$run" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"{sys.argv[2]} run {sys.argv[3]}: logins_per_s {r.get('logins_per_s')} server_cpu_ms_per_login "
      f"{r.get('server_cpu_ms_per_login')} logins_failed {r.get('logins_failed')}", flush=True)
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
    print(f"median {b}: logins_per_s {statistics.median(rate):,.0f} server_cpu_ms_per_login {statistics.median(cpu):.3f}")
PY
