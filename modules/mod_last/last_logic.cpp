#include "last_logic.hpp"

#include "parley/sdk/subscription.hpp"

#include <utility>

namespace parley::mod_last {

bool subscription_allows(std::string_view subscription) { return subscription_has_from(subscription); }

int64_t seconds_since(int64_t then, int64_t now) { return now > then ? now - then : 0; }

std::string format_record(int64_t seconds, std::string_view status) {
  return std::to_string(seconds) + ":" + std::string(status);
}

std::optional<Record> parse_record(std::string_view value) {
  auto colon = value.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 19) return std::nullopt;
  Record r;
  bool negative = value[0] == '-';
  size_t i = negative ? 1 : 0;
  if (i == colon) return std::nullopt;
  for (; i < colon; ++i) {
    char c = value[i];
    if (c < '0' || c > '9') return std::nullopt;
    r.seconds = r.seconds * 10 + (c - '0');
  }
  if (negative) r.seconds = -r.seconds;
  r.status = std::string(value.substr(colon + 1));
  return r;
}

std::optional<std::string> ActivityTracker::on_unavailable(const std::string& bare, std::string status,
                                                           bool others_available) {
  if (removed_.count(bare)) return std::nullopt;
  last_status_[bare] = status;
  if (others_available) return std::nullopt;
  return status;
}

std::optional<std::string> ActivityTracker::on_closed(const std::string& bare, bool was_available,
                                                      bool others_remain, bool others_available) {
  if (removed_.count(bare)) {
    if (!others_remain) removed_.erase(bare);
    return std::nullopt;
  }
  if (was_available) last_status_[bare].clear();
  if (!others_remain) {
    std::string status;
    auto it = last_status_.find(bare);
    if (it != last_status_.end()) {
      status = std::move(it->second);
      last_status_.erase(it);
    }
    return status;
  }
  if (was_available && !others_available) return std::string();
  return std::nullopt;
}

void ActivityTracker::removed(const std::string& bare, bool has_sessions) {
  last_status_.erase(bare);
  if (has_sessions) removed_.insert(bare);
}

void ActivityTracker::registered(const std::string& bare) {
  removed_.erase(bare);
}

std::size_t ActivityTracker::size() const {
  return last_status_.size() + removed_.size();
}

}  // namespace parley::mod_last
