#!/bin/bash
# Second command of the README: the whole test suite, as CI runs it.
#   1. release build: unit + integration tests (real parleyd, gloox and slixmpp clients)
#   2. ASan+UBSan build: the same tests
#   3. TSan build: the tests whose threads meet (the loops' queues and session
#      table, and the integration suites that route across the two loops)
#   4. clang libFuzzer targets: each runs briefly on its seed corpus
# Set PARLEY_QUICK=1 to run step 1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
jobs=$(nproc)
passed=0   # tests, summed over the ctest runs (each fuzz target counts as one)
failed=0
steps_failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() {  # name, command...
  local name=$1; shift
  echo "=== $name"
  if ! "$@"; then steps_failed=$((steps_failed + 1)); echo "=== FAILED: $name"; fi
}

count_ctest() {  # adds ctest's "N% tests passed, F tests failed out of T" to the totals
  local line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  local f t
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
  t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
  passed=$((passed + t - f))
  failed=$((failed + f))
}

build_and_test() {  # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null || { failed=$((failed + 1)); return 1; }
  cmake --build "$dir" -j "$jobs" || { failed=$((failed + 1)); return 1; }
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count_ctest
  return "$rc"
}

tsan() {
  local dir=build-tsan
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TSAN=ON >/dev/null ||
    { failed=$((failed + 1)); return 1; }
  # Only what the selected tests need: a third full build would not fit CI's time.
  cmake --build "$dir" -j "$jobs" --target parleyd parleyctl parley_gloox_client parley_modules \
    parley_test_modules unit_core_loop unit_core_session || { failed=$((failed + 1)); return 1; }
  TSAN_OPTIONS="second_deadlock_stack=1" ctest --test-dir "$dir" --output-on-failure -j "$jobs" \
    -R '^(unit_core_loop|unit_core_session|integration_(gloox|stanzas|modules|mod_presence|mod_roster|mod_offline))$' \
    2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count_ctest
  return "$rc"
}

fuzz() {
  tests/fuzz/run-fuzzers.sh build-fuzz 12 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  passed=$((passed + $(grep -c "stat::number_of_executed_units" "$log")))
  failed=$((failed + $(grep -c "FAILED" "$log")))
  [ "$rc" -eq 0 ] || [ "$(grep -c FAILED "$log")" -gt 0 ] || failed=$((failed + 1))
  return "$rc"
}

step "release build and tests" build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ -z "${PARLEY_QUICK:-}" ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  step "ASan+UBSan build and tests" build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON
  unset ASAN_OPTIONS UBSAN_OPTIONS
  step "TSan build and multi-loop tests" tsan
  if [ -f tests/fuzz/CMakeLists.txt ]; then
    step "fuzz targets" fuzz
  fi
fi
echo "ci: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$steps_failed" -eq 0 ]
