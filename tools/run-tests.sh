#!/bin/bash
# Second command of the README: the whole test suite, as CI runs it.
#   1. release build: the packaging suite, the load generator's smoke test,
#      the full-size suites and the core's with real clients (release_suites)
#   2. ASan+UBSan build: the unit tests and every integration and hostile
#      suite (real parleyd, gloox, slixmpp and web clients)
#   3. TSan build: the tests whose threads meet (the loops' queues, the route
#      table, the session table and sessions moving between loops, and the
#      integration suites that route across the two loops: the
#      core's, BOSH's and every module's)
#   4. clang libFuzzer targets: each runs briefly on its seed corpus
# Each build after the first runs in the background, at the lowest CPU
# priority, while the tests of the step before run (see bg_start).
# Set PARLEY_QUICK=1 to run step 1 only (with the unit tests). Every step prints its wall time, and
# the end a table of them with the total (CI must stay under 30 minutes on a
# 2-core machine). Builds go through ccache when it is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
timings=()  # "name  duration" per step, printed at the end
duration() {  # seconds -> "4m07s"
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}
timed() {  # label, command...: runs it, prints how long it took, keeps its status
  local label=$1; shift
  local t0 rc
  t0=$(date +%s)
  "$@"
  rc=$?
  echo "--- $label: $(duration $(($(date +%s) - t0)))"
  return "$rc"
}
deps_t0=$(date +%s)
tools/install-deps.sh
deps_took=$(duration $(($(date +%s) - deps_t0)))
echo "=== packages (tools/install-deps.sh): $deps_took"
jobs=$(nproc)
passed=0   # tests, summed over the ctest runs (each fuzz target counts as one)
failed=0
steps_failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
launcher=()
# lld links the ~60 executables and modules of each build several times
# faster than ld.bfd (CI's time is mostly compile and link on 2 cores).
if command -v ld.lld >/dev/null 2>&1; then
  for kind in EXE SHARED MODULE; do launcher+=("-DCMAKE_${kind}_LINKER_FLAGS=-fuse-ld=lld"); done
fi
# Unity builds (CMake batches of 8 sources per compiler run): the core's and
# the modules' sources share heavy headers (spdlog, fmt, libuv, the SDK), and
# parsing them once per batch halves the compile time of a cold build (CPU
# time for parleyd and the modules: 5m08s -> 2m28s). Development builds stay
# per file; the code compiles either way.
launcher+=(-DCMAKE_UNITY_BUILD=ON)
if command -v ccache >/dev/null 2>&1; then
  launcher+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # For the build directories configured elsewhere (the fuzz targets').
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
timings+=("$(printf '%-48s %8s' "packages (install-deps.sh)" "$deps_took")")
step() {  # name, command...
  local name=$1; shift
  local t0 took outcome="" rc=0
  echo "=== $name"
  t0=$(date +%s)
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then steps_failed=$((steps_failed + 1)); outcome=" FAILED"; echo "=== FAILED: $name"; fi
  took=$(duration $(($(date +%s) - t0)))
  echo "=== $name: $took"
  timings+=("$(printf '%-48s %8s%s' "$name" "$took" "$outcome")")
  return "$rc"
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

run_ctest() {  # dir, ctest args...: output kept in $log, totals counted
  local dir=$1; shift
  # One more suite than cores: the integration suites spend much of their
  # time waiting on sockets and round trips.
  ctest --test-dir "$dir" --output-on-failure -j "$((jobs + 1))" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count_ctest
  return "$rc"
}

configure() {  # dir, cmake args...
  cmake -S . -B "$1" -G Ninja "${launcher[@]}" "${@:2}" >/dev/null
}

# The builds after the first run in the background while the previous step's
# tests run, at the lowest CPU priority: the suites spend much of their time
# waiting on sockets and round trips, and a build at nice 19 takes only the
# CPU time they leave (the kernel gives a nice-0 task about 70 times its share
# when both want the same core). What was one build after the other, then the
# tests, becomes a build that mostly hides behind the tests before it.
bg_pid=""
bg_name=""
bg_out=""
bg_t0=0
bg_start() {  # name, command...: started now, in the background, at nice 19
  bg_name=$1; shift
  bg_out=$(mktemp)
  bg_t0=$(date +%s)
  ( renice -n 19 -p "$BASHPID" >/dev/null; "$@" ) >"$bg_out" 2>&1 &
  bg_pid=$!
  echo "=== $bg_name: started in the background"
}
bg_wait() {  # waits for the background build, shows its output, keeps its status
  local rc
  wait "$bg_pid"
  rc=$?
  cat "$bg_out"
  rm -f "$bg_out"
  local took
  took=$(duration $(($(date +%s) - bg_t0)))
  echo "--- $bg_name: $took from its start in the background"
  timings+=("$(printf '%-48s %8s' "  $bg_name, in all (background)" "$took")")
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  return "$rc"
}

# Compile time is most of CI's time on 2 cores. The release build carries no
# debug information (about a tenth of its compile time); the sanitizer builds
# keep line tables only (-g1), which is all their reports need to name a file
# and line.
# The unit tests are built and run once, in the ASan+UBSan step (stricter, and
# a third of a build's compile time saved here). Every integration and hostile
# suite runs in the ASan+UBSan step, and every multi-loop and module suite
# again under TSan; the release step runs against the release parleyd what
# only it can: the packaging suite (the installed tree, the .deb), the load
# generator's smoke test, the SDK's out-of-tree build, the suites whose sizes
# the sanitizers scale down (mod_roster, mod_presence: full size only here)
# or whose bounds only an unsanitized server shows (write_backlog's RSS), and
# the core's stream and stanza suites with the real client libraries.
# PARLEY_QUICK (the release step alone) runs everything there, unit tests too.
release_unit_tests=OFF
[ -n "${PARLEY_QUICK:-}" ] && release_unit_tests=ON
release_suites='^(integration_(install|stream|stanzas|gloox|slixmpp|go_sendxmpp|mod_roster|mod_presence|write_backlog)|parley_bench_smoke|sdk_[a-z_]+|layering[a-z_]*)$'
release_build() {
  configure build -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_UNIT_TESTS=$release_unit_tests \
    -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" || return 1
  cmake --build build -j "$jobs"
}
# -O1 (asserts kept): ASan's own advice; at -O0 the sanitized server ran the
# suites about twice as slowly, which CI's 30 minutes no longer had room for.
# The load generator is a release tool (its smoke test runs in the release
# step): the sanitized build leaves it out.
asan_build() {
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON -DPARLEY_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" -DCMAKE_C_FLAGS_DEBUG="-g1 -O1" || return 1
  cmake --build build-asan -j "$jobs"
}
asan_tests() {
  # The packaging suite (integration_install) checks files and a run of the
  # installed server: the release step runs it, a sanitized copy adds nothing.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:malloc_context_size=5 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest build-asan -E '^integration_install$'
}
# -O1: gcc compiles the heaviest translation units a quarter faster than at -O2
# (core's largest unity batch 19.4 -> 14.7 s, mod_pep's 13.8 -> 9.9 s, session 14),
# and with every test hidden behind a build, CI's wall time is build CPU time;
# TSan's own instrumentation costs the tests far more than the optimizer saves.
tsan_build() {
  configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TSAN=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" || return 1
  # Only what the selected tests need: a third full build would not fit CI's
  # time. The server, its admin tool, the gloox client, every shipped module
  # and the test modules cover every integration suite below.
  cmake --build build-tsan -j "$jobs" --target parleyd parleyctl parley_gloox_client parley_modules \
    parley_test_modules unit_core_loop unit_core_session unit_core_router unit_core_modules
}
tsan_tests() {
  # The core's routing suites and every module's suite (integration_mod_*,
  # the module host's, the session seams across loops, reload storms, and the
  # modules driven by gloox).
  TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" run_ctest build-tsan \
    -R '^(unit_core_(loop|session|router|modules)|integration_(gloox|gloox_modules|stanzas|modules|session_seams|reload_storm|component|metrics|bosh|mod_[a-z_]+))$'
}
fuzz_build() {
  tests/fuzz/run-fuzzers.sh build-fuzz 3 build
}
fuzz_run() {
  tests/fuzz/run-fuzzers.sh build-fuzz 3 run 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  passed=$((passed + $(grep -c "stat::number_of_executed_units" "$log")))
  failed=$((failed + $(grep -c "FAILED" "$log")))
  [ "$rc" -eq 0 ] || [ "$(grep -c FAILED "$log")" -gt 0 ] || failed=$((failed + 1))
  return "$rc"
}
counted() {  # command...: a failure that printed no ctest/fuzz count counts as one
  "$@" || { failed=$((failed + 1)); return 1; }
}

step "release build" counted release_build
if [ -n "${PARLEY_QUICK:-}" ]; then
  step "release tests" run_ctest build
else
  bg_start "ASan+UBSan build" asan_build
  step "release tests (ASan+UBSan build behind them)" run_ctest build -R "$release_suites"
  if step "ASan+UBSan build, the rest" bg_wait; then
    bg_start "TSan build" tsan_build
    step "ASan+UBSan tests (TSan build behind them)" asan_tests
  else
    bg_start "TSan build" tsan_build
  fi
  if step "TSan build, the rest" bg_wait; then
    [ -f tests/fuzz/CMakeLists.txt ] && bg_start "fuzz build" fuzz_build
    step "TSan tests (fuzz build behind them)" tsan_tests
  else
    [ -f tests/fuzz/CMakeLists.txt ] && bg_start "fuzz build" fuzz_build
  fi
  if [ -f tests/fuzz/CMakeLists.txt ]; then
    step "fuzz build, the rest" bg_wait && step "fuzz targets" fuzz_run
  fi
fi
echo "=== wall time per step"
for line in "${timings[@]}"; do echo "  $line"; done
printf '  %-48s %8s\n' "total" "$(duration $(($(date +%s) - started)))"
echo "ci: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$steps_failed" -eq 0 ]
