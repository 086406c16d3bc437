#include "blocklist.hpp"

#include <algorithm>

namespace mod_blocking {

const std::vector<std::string>& Blocklist::items() const {
  static const std::vector<std::string> none;
  return body_ ? body_->items : none;
}

void Blocklist::assign(const std::vector<std::string>& items) {
  clear();
  add(items);
}

std::vector<std::string> Blocklist::add(const std::vector<std::string>& items) {
  std::vector<std::string> added;
  for (const std::string& item : items) {
    if (!body_) body_ = std::make_unique<Body>();
    if (!body_->index.insert(item).second) continue;
    body_->items.push_back(item);
    added.push_back(item);
  }
  return added;
}

std::vector<std::string> Blocklist::remove(const std::vector<std::string>& items) {
  std::vector<std::string> removed;
  if (!body_) return removed;
  for (const std::string& item : items)
    if (body_->index.erase(item) != 0) removed.push_back(item);
  if (!removed.empty()) {
    Body& b = *body_;
    b.items.erase(std::remove_if(b.items.begin(), b.items.end(),
                                 [&b](const std::string& item) { return b.index.count(item) == 0; }),
                  b.items.end());
  }
  if (body_->items.empty()) body_.reset();
  return removed;
}

bool Blocklist::blocks(const parley::Jid& address) const {
  if (!body_) return false;
  for (const std::string& form : match_forms(address))
    if (body_->index.count(form) != 0) return true;
  return false;
}

}  // namespace mod_blocking
