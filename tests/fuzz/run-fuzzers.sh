#!/bin/bash
# Builds the libFuzzer targets with clang and runs each for a while on a copy
# of its seed corpus. Usage: run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET [build|run]
# (build: only build the targets; run: only run them, built already; both by default).
# Exit status: non-zero if a target fails to build or finds a crash.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
seconds=${2:-20}
phase=${3:-all}
targets=$(sed -n 's/^parley_add_fuzzer(\([a-z0-9_]*\) .*/\1/p' tests/fuzz/CMakeLists.txt)
if [ "$phase" != run ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1 \
    -DPARLEY_FUZZ=ON -DPARLEY_BUILD_TESTS=ON -DCMAKE_UNITY_BUILD=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    >/dev/null || exit 1
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$(nproc)" --target $targets || exit 1
fi
[ "$phase" = build ] && exit 0
status=0
for t in $targets; do
  corpus=tests/fuzz/corpus/${t%_fuzz}
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "fuzz: $t for ${seconds}s"
  # The whole-session target touches so much code per run that libFuzzer's entropic
  # bookkeeping costs 70% of its time (perf); the classic schedule runs it 10x faster.
  extra=()
  [ "$t" = c2s_session_fuzz ] && extra=(-entropic=0)
  if ! "$build/tests/fuzz/$t" "${extra[@]}" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/$t-" "$work" \
       >"$build/$t.log" 2>&1; then
    echo "fuzz: $t FAILED"; tail -40 "$build/$t.log"; status=1
  else
    grep -E "stat::number_of_executed_units" "$build/$t.log" | sed "s/^/fuzz: $t /"
  fi
  rm -rf "$work"
done
exit $status
