#include "rate_limiter.hpp"

#include <algorithm>

namespace parley::mod_register {

void RateLimiter::set_window(std::chrono::seconds interval) {
  window_ = interval;
}

std::chrono::seconds RateLimiter::window() const {
  return window_;
}

void RateLimiter::set_burst(uint32_t burst) {
  burst_ = burst < 1 ? 1 : burst;
}

bool RateLimiter::try_acquire(const std::string& address, Clock::time_point now) {
  if (window_.count() <= 0) return true;
  // A full sweep at most once per interval keeps the map to the addresses
  // whose bucket is not full, without a timer.
  if (now - last_prune_ >= window_) prune(now);
  Entry& e = entries_[address];
  Clock::duration debt = e.full_at > now ? e.full_at - now : Clock::duration::zero();
  // This one and those in flight each take an interval's worth of the bucket.
  if (debt + window_ * (static_cast<int64_t>(e.in_flight) + 1) > capacity()) {
    if (e.in_flight == 0 && debt == Clock::duration::zero()) entries_.erase(address);
    return false;
  }
  ++e.in_flight;
  return true;
}

std::chrono::seconds RateLimiter::wait_for(const std::string& address, Clock::time_point now) const {
  auto it = entries_.find(address);
  if (window_.count() <= 0 || it == entries_.end()) return std::chrono::seconds(0);
  const Entry& e = it->second;
  Clock::duration debt = e.full_at > now ? e.full_at - now : Clock::duration::zero();
  Clock::duration over = debt + window_ * (static_cast<int64_t>(e.in_flight) + 1) - capacity();
  if (over <= Clock::duration::zero()) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(over);
}

void RateLimiter::commit(const std::string& address, Clock::time_point now) {
  if (window_.count() <= 0) return;
  Entry& e = entries_[address];
  if (e.in_flight > 0) --e.in_flight;
  e.full_at = std::max(e.full_at, now) + window_;
}

void RateLimiter::release(const std::string& address) {
  auto it = entries_.find(address);
  if (it == entries_.end()) return;
  if (it->second.in_flight > 0) --it->second.in_flight;
  if (it->second.in_flight == 0 && it->second.full_at == Clock::time_point{}) entries_.erase(it);
}

std::string RateLimiter::save(Clock::time_point now) const {
  std::string out = "v1\n";
  for (const auto& [address, e] : entries_) {
    if (e.full_at <= now) continue;
    auto left = std::chrono::duration_cast<std::chrono::seconds>(e.full_at - now).count();
    out += address + " " + std::to_string(left) + "\n";
  }
  return out;
}

bool RateLimiter::restore(std::string_view bytes, Clock::time_point now) {
  if (bytes.substr(0, 3) != "v1\n") return false;
  bytes.remove_prefix(3);
  while (!bytes.empty()) {
    std::size_t eol = bytes.find('\n');
    if (eol == std::string_view::npos) return false;
    std::string_view line = bytes.substr(0, eol);
    bytes.remove_prefix(eol + 1);
    std::size_t space = line.rfind(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size()) return false;
    long long left = 0;
    for (char c : line.substr(space + 1)) {
      if (c < '0' || c > '9' || left > 1'000'000'000) return false;
      left = left * 10 + (c - '0');
    }
    // The options may have changed: never owe more than a whole bucket.
    Clock::duration wait = std::min<Clock::duration>(std::chrono::seconds(left), capacity());
    if (wait <= Clock::duration::zero()) continue;
    entries_[std::string(line.substr(0, space))].full_at = now + wait;
  }
  return true;
}

std::size_t RateLimiter::size() const {
  return entries_.size();
}

void RateLimiter::prune(Clock::time_point now) {
  last_prune_ = now;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    if (e.in_flight == 0 && e.full_at <= now) it = entries_.erase(it);
    else ++it;
  }
}

}  // namespace parley::mod_register
