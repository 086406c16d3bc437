// One user's blocklist: the blocked items (normalized JID strings) in the
// order they were blocked, and the XEP-0191 test of whether an address is
// blocked by any of them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "blocking_jid.hpp"

namespace mod_blocking {

// Every online user's list is cached on the loops that route to it, and
// almost all lists are empty: an empty one is a null pointer (8 bytes, where
// the vector and the hash set took 80; issue 18, idle memory). The body is
// made by the first item and freed when the last goes.
class Blocklist {
 public:
  const std::vector<std::string>& items() const;
  std::size_t size() const { return body_ ? body_->items.size() : 0; }
  bool empty() const { return !body_; }
  bool contains(const std::string& item) const { return body_ && body_->index.count(item) != 0; }

  // Replaces the whole list (a load from storage); duplicates are dropped.
  void assign(const std::vector<std::string>& items);
  // Appends those of `items` not blocked yet, in order; returns them.
  std::vector<std::string> add(const std::vector<std::string>& items);
  // Removes those of `items` that are blocked; returns them.
  std::vector<std::string> remove(const std::vector<std::string>& items);
  void clear() { body_.reset(); }

  // Whether any item blocks `address` (XEP-0191 §"JID Matching"). Each form
  // of the address is one hash lookup, so the cost does not grow with the list.
  bool blocks(const parley::Jid& address) const;

 private:
  struct Body {
    std::vector<std::string> items;
    std::unordered_set<std::string> index;
  };
  std::unique_ptr<Body> body_;  // null: empty
};

}  // namespace mod_blocking
