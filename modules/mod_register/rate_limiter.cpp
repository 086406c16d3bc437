#include "rate_limiter.hpp"

#include <algorithm>

namespace parley::mod_register {

void RateLimiter::set_window(std::chrono::seconds window) {
  std::lock_guard lock(mu_);
  window_ = window;
}

std::chrono::seconds RateLimiter::window() const {
  std::lock_guard lock(mu_);
  return window_;
}

bool RateLimiter::try_acquire(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (window_.count() <= 0) return true;
  // A full sweep at most once per window keeps the map to the addresses of
  // one window without a timer.
  if (now - last_prune_ >= window_) prune(now);
  Entry& e = entries_[address];
  if (e.in_flight) return false;
  if (e.registered && now - e.last < window_) return false;
  e.in_flight = true;
  return true;
}

void RateLimiter::commit(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (window_.count() <= 0) return;
  Entry& e = entries_[address];
  e.in_flight = false;
  e.registered = true;
  e.last = now;
}

void RateLimiter::release(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) return;
  it->second.in_flight = false;
  if (!it->second.registered) entries_.erase(it);
}

std::string RateLimiter::save(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::string out = "v1\n";
  for (const auto& [address, e] : entries_) {
    if (!e.registered || now - e.last >= window_) continue;
    auto left = std::chrono::duration_cast<std::chrono::seconds>(window_ - (now - e.last)).count();
    out += address + " " + std::to_string(left) + "\n";
  }
  return out;
}

bool RateLimiter::restore(std::string_view bytes, Clock::time_point now) {
  if (bytes.substr(0, 3) != "v1\n") return false;
  bytes.remove_prefix(3);
  std::lock_guard lock(mu_);
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
    // The window may have shrunk with the new options: never wait longer than it.
    auto wait = std::min(std::chrono::seconds(left), window_);
    if (wait.count() <= 0) continue;
    Entry& e = entries_[std::string(line.substr(0, space))];
    e.registered = true;
    e.last = now - (window_ - wait);
  }
  return true;
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void RateLimiter::prune(Clock::time_point now) {
  last_prune_ = now;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    if (!e.in_flight && (!e.registered || now - e.last >= window_)) it = entries_.erase(it);
    else ++it;
  }
}

}  // namespace parley::mod_register
