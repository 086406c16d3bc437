#!/usr/bin/env bash
# bench/heaptrack_idle.sh - where an idle session's heap goes, per allocation site (BENCHMARKS.md, "idle
# memory"). parleyd (BUILD, bench/parley.yml, 2 workers) runs under heaptrack; N sessions log in with
# parley-bench (TLS: starttls or none) and idle; once all are in and a few seconds passed (their
# parsers given back), parleyd is killed with SIGKILL, so that heaptrack's "leaked" bytes are what was
# live during the hold. bench/heaptrack_sites.py then sorts them into rows, divided by N.
#
#   bench/heaptrack_idle.sh BUILD N TLS OUTDIR [BENCH_OPTION...]   # e.g. build 1000 starttls /tmp/ht --sm
#   bench/heaptrack_sites.py OUTDIR/stacks.txt N [--detail]
# BENCH_OPTIONs go to parley-bench before its subcommand (--sm: every session enables stream management).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,10p' "$0"; exit 2; }
build=$(cd "$1" && pwd)
n=$2
tls=$3
out=$4
shift 4
extra=("$@")
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=bench/parley_run.sh
source "$repo/bench/parley_run.sh"
parley_run_init parley-heaptrack
# parleyd dlopens a private copy of each module and removes it at once; heaptrack's interpreter reads the
# symbols of a mapped file later, by its path: the copies stay (in the scratch data_dir) for the run.
cat > "$tmp/keep.c" <<'END'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
static int kept(const char* p) { return p != NULL && strstr(p, "/module-cache/") != NULL; }
int unlink(const char* p) {
  if (kept(p)) return 0;
  return ((int (*)(const char*))dlsym(RTLD_NEXT, "unlink"))(p);
}
int remove(const char* p) {
  if (kept(p)) return 0;
  return ((int (*)(const char*))dlsym(RTLD_NEXT, "remove"))(p);
}
END
cc -shared -fPIC -O2 -o "$tmp/keep.so" "$tmp/keep.c" -ldl
start_parleyd "$build" "$tmp/server" "$n" env LD_PRELOAD="$tmp/keep.so" heaptrack -o "$out/heaptrack"
client_port=$port
if [ "$tls" = none ]; then
  client_port=$(grep -B3 'starttls_required: false' "$tmp/server/parley.yml" | sed -n 's/.*port: *\([0-9]*\).*/\1/p')
  [ -n "$client_port" ] || { echo "no plaintext listener in $tmp/server/parley.yml" >&2; exit 1; }
fi
"$build/tools/parley-bench/parley-bench" --port "$client_port" --tls "$tls" --no-progress "${extra[@]}" connect \
  --sessions "$n" --hold 600 > "$out/bench.log" 2>&1 &
bench_pid=$!
ctl=("$build/tools/parleyctl/parleyctl" --config "$tmp/server/parley.yml")
for _ in $(seq 1 600); do
  online=$("${ctl[@]}" --json stats 2>/dev/null | /usr/bin/python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(d.get("sessions", d.get("online_sessions", 0)))' 2>/dev/null || echo 0)
  [ "$online" -ge "$n" ] && break
  sleep 1
done
echo "sessions online: $online" >&2
sleep 5  # the parsers of the last logins given back (a sweep period or two)
parleyd=$(pgrep -P "$pid" -x parleyd || true)
kill -KILL "${parleyd:-$pid}"
wait "$pid" || true
pid=""
kill -TERM "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
data=$(ls -t "$out"/heaptrack.* | head -1)
heaptrack_print -f "$data" -F "$out/stacks.txt" --flamegraph-cost-type leaked > "$out/print.txt"
rm -rf "$tmp"
echo "$out/stacks.txt" >&2
