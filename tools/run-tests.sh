#!/bin/bash
# Second command of the README: the whole test suite, as CI runs it.
#   1. release build: unit + integration tests (real parleyd, gloox and slixmpp clients)
#   2. ASan+UBSan build: the same tests
#   3. clang libFuzzer targets: each runs briefly on its seed corpus
# Set PARLEY_QUICK=1 to run step 1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
jobs=$(nproc)
passed=0
failed=0
step() {  # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "=== FAILED: $name"; fi
}

build_and_test() {  # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null &&
    cmake --build "$dir" -j "$jobs" &&
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

step "release build and tests" build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ -z "${PARLEY_QUICK:-}" ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  step "ASan+UBSan build and tests" build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON
  unset ASAN_OPTIONS UBSAN_OPTIONS
  if [ -f tests/fuzz/CMakeLists.txt ]; then
    step "fuzz targets" tests/fuzz/run-fuzzers.sh build-fuzz 20
  fi
fi
echo "ci: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
