// The decayed averages behind /metrics' NAME_avg{window} (issue 13): one
// sample a second into 1, 10 and 100 s exponentially decayed averages.
#include <doctest/doctest.h>

#include <cmath>

#include "core/net/http_metrics.hpp"

using parley::LoopGauges;

namespace {

// Samples `value` once a second for `seconds` seconds, starting from `avg`.
double run(double avg, double value, int seconds, double window) {
  for (int i = 0; i < seconds; ++i) avg = LoopGauges::decayed(avg, value, 1.0, window);
  return avg;
}

}  // namespace

TEST_CASE("a constant queue length is its own average") {
  for (double window : LoopGauges::kWindowSeconds) CHECK(run(7, 7, 50, window) == doctest::Approx(7));
}

TEST_CASE("a step reaches 1 - 1/e of its height after one window, and the shorter windows react first") {
  // From 0 to 100 for 10 s: the 1 s average is ~100, the 10 s one ~63, the 100 s one ~9.5.
  CHECK(run(0, 100, 10, 1) == doctest::Approx(100).epsilon(0.001));
  CHECK(run(0, 100, 10, 10) == doctest::Approx(100 * (1 - std::exp(-1.0))));
  CHECK(run(0, 100, 10, 100) == doctest::Approx(100 * (1 - std::exp(-0.1))));
  // And back to 0: the long window remembers the burst longest.
  double a1 = run(run(0, 100, 10, 1), 0, 5, 1), a100 = run(run(0, 100, 10, 100), 0, 5, 100);
  CHECK(a1 < 1);
  CHECK(a100 > 8);
}

TEST_CASE("the step depends on the time since the last sample, not on the number of samples") {
  // A late timer (2 s instead of 1) decays as much as two on-time ones.
  double two_steps = LoopGauges::decayed(LoopGauges::decayed(0, 50, 1.0, 10), 50, 1.0, 10);
  CHECK(LoopGauges::decayed(0, 50, 2.0, 10) == doctest::Approx(two_steps));
}
