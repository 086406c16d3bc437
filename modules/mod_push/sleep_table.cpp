#include "sleep_table.hpp"

#include <charconv>

namespace parley::push {

void SleepTable::set(uint64_t session, Flag flag, bool on) {
  if (session == 0) return;
  std::lock_guard lock(mu_);
  if (on) {
    flags_[session] |= flag;
    return;
  }
  auto it = flags_.find(session);
  if (it == flags_.end()) return;
  it->second &= static_cast<uint8_t>(~flag);
  if (it->second == 0) flags_.erase(it);
}

void SleepTable::forget(uint64_t session) {
  std::lock_guard lock(mu_);
  flags_.erase(session);
}

bool SleepTable::asleep(uint64_t session) const {
  std::lock_guard lock(mu_);
  return flags_.count(session) != 0;
}

bool SleepTable::all_asleep(const std::vector<uint64_t>& sessions) const {
  std::lock_guard lock(mu_);
  for (uint64_t s : sessions)
    if (flags_.count(s) == 0) return false;
  return true;
}

size_t SleepTable::size() const {
  std::lock_guard lock(mu_);
  return flags_.size();
}

std::string SleepTable::save() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [session, flags] : flags_) {
    out += std::to_string(session);
    out += ' ';
    out += std::to_string(flags);
    out += '\n';
  }
  return out;
}

bool SleepTable::restore(std::string_view bytes) {
  std::unordered_map<uint64_t, uint8_t> read;
  while (!bytes.empty()) {
    size_t end = bytes.find('\n');
    if (end == std::string_view::npos) return false;
    std::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(end + 1);
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return false;
    uint64_t session = 0;
    unsigned flags = 0;
    auto [p1, e1] = std::from_chars(line.data(), line.data() + space, session);
    auto [p2, e2] = std::from_chars(line.data() + space + 1, line.data() + line.size(), flags);
    if (e1 != std::errc() || p1 != line.data() + space || e2 != std::errc() || p2 != line.data() + line.size() ||
        session == 0 || flags == 0 || flags > (detached | inactive))
      return false;
    read[session] = static_cast<uint8_t>(flags);
  }
  std::lock_guard lock(mu_);
  flags_ = std::move(read);
  return true;
}

}  // namespace parley::push
