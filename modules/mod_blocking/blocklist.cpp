#include "blocklist.hpp"

#include <algorithm>

namespace mod_blocking {

void Blocklist::assign(const std::vector<std::string>& items) {
  clear();
  add(items);
}

std::vector<std::string> Blocklist::add(const std::vector<std::string>& items) {
  std::vector<std::string> added;
  for (const std::string& item : items) {
    if (!index_.insert(item).second) continue;
    items_.push_back(item);
    added.push_back(item);
  }
  return added;
}

std::vector<std::string> Blocklist::remove(const std::vector<std::string>& items) {
  std::vector<std::string> removed;
  for (const std::string& item : items)
    if (index_.erase(item) != 0) removed.push_back(item);
  if (!removed.empty())
    items_.erase(std::remove_if(items_.begin(), items_.end(),
                                [this](const std::string& item) { return index_.count(item) == 0; }),
                 items_.end());
  return removed;
}

void Blocklist::clear() {
  items_.clear();
  index_.clear();
}

bool Blocklist::blocks(const parley::Jid& address) const {
  if (items_.empty()) return false;
  for (const std::string& form : match_forms(address))
    if (index_.count(form) != 0) return true;
  return false;
}

}  // namespace mod_blocking
