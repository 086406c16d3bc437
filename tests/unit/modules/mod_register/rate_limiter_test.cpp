#include <doctest/doctest.h>

#include <chrono>

#include "rate_limiter.hpp"

using parley::mod_register::RateLimiter;
using namespace std::chrono_literals;

TEST_CASE("one successful registration per address per window") {
  RateLimiter limiter(600s);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  REQUIRE(limiter.try_acquire("127.0.0.1", t0));
  limiter.commit("127.0.0.1", t0);
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 1s));
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 599s));
  CHECK(limiter.try_acquire("10.0.0.1", t0 + 1s));  // another address is not concerned
  limiter.release("10.0.0.1");
  CHECK(limiter.try_acquire("127.0.0.1", t0 + 600s));  // the window is over
}

TEST_CASE("a failed registration frees its reservation") {
  RateLimiter limiter(600s);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  REQUIRE(limiter.try_acquire("::1", t0));
  CHECK_FALSE(limiter.try_acquire("::1", t0));  // in flight
  limiter.release("::1");
  CHECK(limiter.try_acquire("::1", t0 + 1s));
  limiter.release("::1");
  CHECK(limiter.size() == 0);
}

TEST_CASE("a window of zero does not limit") {
  RateLimiter limiter(0s);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(limiter.try_acquire("127.0.0.1", t0));
    limiter.commit("127.0.0.1", t0);
  }
  CHECK(limiter.size() == 0);
}

TEST_CASE("old addresses are forgotten") {
  RateLimiter limiter(10s);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  for (int i = 0; i < 100; ++i) {
    std::string address = "10.0.0." + std::to_string(i);
    REQUIRE(limiter.try_acquire(address, t0));
    limiter.commit(address, t0);
  }
  CHECK(limiter.size() == 100);
  REQUIRE(limiter.try_acquire("10.0.1.1", t0 + 11s));
  CHECK(limiter.size() == 1);  // only the one in flight
}

TEST_CASE("the running windows survive a reload") {
  RateLimiter old(600s);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  REQUIRE(old.try_acquire("127.0.0.1", t0));
  old.commit("127.0.0.1", t0);
  REQUIRE(old.try_acquire("10.0.0.1", t0 - 700s));  // long over by t0
  old.commit("10.0.0.1", t0 - 700s);
  std::string state = old.save(t0 + 100s);
  CHECK(state == "v1\n127.0.0.1 500\n");

  RateLimiter fresh(600s);
  auto t1 = RateLimiter::Clock::time_point{} + 2000h;  // another process's clock
  REQUIRE(fresh.restore(state, t1));
  CHECK_FALSE(fresh.try_acquire("127.0.0.1", t1 + 499s));
  CHECK(fresh.try_acquire("127.0.0.1", t1 + 500s));
  CHECK(fresh.try_acquire("10.0.0.1", t1));

  RateLimiter shorter(60s);
  REQUIRE(shorter.restore(state, t1));
  CHECK(shorter.try_acquire("127.0.0.1", t1 + 60s));

  CHECK_FALSE(fresh.restore("v2\n", t1));
  CHECK_FALSE(fresh.restore("v1\nnoseconds\n", t1));
  CHECK_FALSE(fresh.restore("v1\n1.2.3.4 x\n", t1));
  CHECK(fresh.restore("v1\n", t1));
}

TEST_CASE("a burst, then one per interval (token bucket)") {
  RateLimiter limiter(600s, 3);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(limiter.try_acquire("127.0.0.1", t0));
    limiter.commit("127.0.0.1", t0);
  }
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 1s));
  CHECK(limiter.wait_for("127.0.0.1", t0 + 1s) == 599s);
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 599s));
  // One token back per interval, not the whole burst.
  REQUIRE(limiter.try_acquire("127.0.0.1", t0 + 600s));
  limiter.commit("127.0.0.1", t0 + 600s);
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 601s));
  CHECK(limiter.wait_for("127.0.0.1", t0 + 601s) == 599s);
  // A quiet address gets its whole burst back.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(limiter.try_acquire("127.0.0.1", t0 + 3000s));
    limiter.commit("127.0.0.1", t0 + 3000s);
  }
  CHECK_FALSE(limiter.try_acquire("127.0.0.1", t0 + 3000s));
}

TEST_CASE("registrations in flight count against the burst") {
  RateLimiter limiter(600s, 2);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  REQUIRE(limiter.try_acquire("::1", t0));
  REQUIRE(limiter.try_acquire("::1", t0));
  CHECK_FALSE(limiter.try_acquire("::1", t0));
  limiter.release("::1");  // one failed: its token is back
  CHECK(limiter.try_acquire("::1", t0));
}

TEST_CASE("a reload keeps the debt of a bucket, capped by the new burst") {
  RateLimiter old(600s, 3);
  auto t0 = RateLimiter::Clock::time_point{} + 1000h;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(old.try_acquire("127.0.0.1", t0));
    old.commit("127.0.0.1", t0);
  }
  std::string state = old.save(t0);
  CHECK(state == "v1\n127.0.0.1 1800\n");
  RateLimiter fresh(600s, 3);
  auto t1 = RateLimiter::Clock::time_point{} + 2000h;
  REQUIRE(fresh.restore(state, t1));
  CHECK_FALSE(fresh.try_acquire("127.0.0.1", t1 + 599s));
  CHECK(fresh.try_acquire("127.0.0.1", t1 + 600s));
}
