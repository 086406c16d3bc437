// One successful registration per client address per window (ejabberd's
// registration_timeout). A registration reserves its address while the
// account is being created, so that two at once from one address cannot both
// pass; a failed one gives the reservation back. Thread-safe: the module's
// handlers run on several loops.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace parley::mod_register {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // window 0: no limit.
  explicit RateLimiter(std::chrono::seconds window = std::chrono::seconds(0)) : window_(window) {}

  void set_window(std::chrono::seconds window);
  std::chrono::seconds window() const;

  // Reserves `address` at `now`; false if a registration from it succeeded
  // less than the window ago or is still in flight.
  bool try_acquire(const std::string& address, Clock::time_point now);
  // The reserved registration succeeded at `now`: the window starts.
  void commit(const std::string& address, Clock::time_point now);
  // The reserved registration failed: the address is free again.
  void release(const std::string& address);

  // Hot reload: the windows still running, as text ("v1", then one
  // "ADDRESS SECONDS_LEFT" line each); restore() adds them back as of `now`.
  std::string save(Clock::time_point now) const;
  bool restore(std::string_view bytes, Clock::time_point now);

  // Addresses remembered (for tests and metrics).
  std::size_t size() const;

 private:
  struct Entry {
    bool in_flight = false;
    bool registered = false;
    Clock::time_point last{};
  };
  // Drops entries whose window is over (called under mu_).
  void prune(Clock::time_point now);

  mutable std::mutex mu_;
  std::chrono::seconds window_;
  std::map<std::string, Entry> entries_;
  Clock::time_point last_prune_{};
};

}  // namespace parley::mod_register
