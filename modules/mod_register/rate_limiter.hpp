// Registrations per client address as a rate: a burst of `burst` accounts,
// then one more per `interval` (a token bucket, kept as the time at which the
// address's bucket is full again: the generic cell rate algorithm). With a
// burst of 1 it is ejabberd's registration_timeout: one per interval. A
// registration reserves a token while the account is being created, so that
// several at once from one address cannot pass together; a failed one gives it
// back. Not thread-safe: mod_register keeps one per loop and hands each
// address to the loop that owns it (a hash of the address), so that one
// address's registrations are counted in one place without a lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace parley::mod_register {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // interval 0: no limit. A burst below 1 counts as 1.
  explicit RateLimiter(std::chrono::seconds interval = std::chrono::seconds(0), uint32_t burst = 1)
      : window_(interval), burst_(burst < 1 ? 1 : burst) {}

  void set_window(std::chrono::seconds interval);
  std::chrono::seconds window() const;
  void set_burst(uint32_t burst);

  // Reserves a registration for `address` at `now`; false if its burst is
  // used up (successes and those still in flight).
  bool try_acquire(const std::string& address, Clock::time_point now);
  // How long until `address` may register again (0 if it may now).
  std::chrono::seconds wait_for(const std::string& address, Clock::time_point now) const;
  // The reserved registration succeeded at `now`: it takes its token.
  void commit(const std::string& address, Clock::time_point now);
  // The reserved registration failed: its token is given back.
  void release(const std::string& address);

  // Hot reload: the buckets not yet full, as text ("v1", then one "ADDRESS
  // SECONDS_UNTIL_FULL" line each: with a burst of 1, the seconds left of the
  // window, as before); restore() adds them back as of `now`.
  std::string save(Clock::time_point now) const;
  bool restore(std::string_view bytes, Clock::time_point now);

  // Addresses remembered (for tests and metrics).
  std::size_t size() const;

 private:
  struct Entry {
    uint32_t in_flight = 0;
    Clock::time_point full_at{};  // the bucket is full again from then on
  };
  Clock::duration capacity() const { return window_ * static_cast<int64_t>(burst_); }
  // Drops entries whose bucket is full and that have nothing in flight.
  void prune(Clock::time_point now);

  std::chrono::seconds window_;
  uint32_t burst_;
  std::map<std::string, Entry> entries_;
  Clock::time_point last_prune_{};
};

}  // namespace parley::mod_register
