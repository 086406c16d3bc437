// One user's blocklist: the blocked items (normalized JID strings) in the
// order they were blocked, and the XEP-0191 test of whether an address is
// blocked by any of them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "blocking_jid.hpp"

namespace mod_blocking {

class Blocklist {
 public:
  const std::vector<std::string>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }
  bool contains(const std::string& item) const { return index_.count(item) != 0; }

  // Replaces the whole list (a load from storage); duplicates are dropped.
  void assign(const std::vector<std::string>& items);
  // Appends those of `items` not blocked yet, in order; returns them.
  std::vector<std::string> add(const std::vector<std::string>& items);
  // Removes those of `items` that are blocked; returns them.
  std::vector<std::string> remove(const std::vector<std::string>& items);
  void clear();

  // Whether any item blocks `address` (XEP-0191 §"JID Matching"). Each form
  // of the address is one hash lookup, so the cost does not grow with the list.
  bool blocks(const parley::Jid& address) const;

 private:
  std::vector<std::string> items_;
  std::unordered_set<std::string> index_;
};

}  // namespace mod_blocking
