// mod_roster/roster_codec.hpp - the stored form of a roster in the map store
// (issue 11). One map per account (keyed by its localpart), holding:
//   "i/CONTACT"  a roster item, or the record of its removal (a tombstone),
//                with the roster version that last changed it
//   "p/CONTACT"  an unanswered subscription request (Pending In): the stanza
//   "floor"      the highest version of a removal record that was dropped to
//                keep them bounded (max_removal_records): a client whose
//                cached version is older gets the whole roster
// A bare JID never holds '/', so the prefixes cannot collide. The item's
// value is text a SQL SELECT can build from the old table too (the move at
// first start):
//   "VER SUB ASK APPROVED NAME GROUPS"  NAME is "-" (none) or "LEN:BYTES",
//   GROUPS is encode_groups' form; a tombstone is "VER remove".
// The standard library only (unit-tested).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roster_item.hpp"

namespace mod_roster {

inline constexpr std::string_view item_prefix = "i/";
inline constexpr std::string_view pending_prefix = "p/";
inline constexpr std::string_view floor_key = "floor";

std::string encode_item(const RosterItem& item);
std::string encode_tombstone(int64_t ver);

// A decoded "i/" value: an item, or a removal at `ver`.
struct StoredEntry {
  bool removed = false;
  RosterItem item;  // item.ver is the version in both cases
};
std::optional<StoredEntry> decode_entry(std::string_view contact, std::string_view value);

// One account's roster as read from its map.
struct StoredRoster {
  std::vector<RosterItem> items;                             // in no particular order
  std::vector<std::pair<std::string, int64_t>> removed;      // (contact, version)
  std::vector<std::pair<std::string, std::string>> pending;  // (contact, stanza)
  int64_t floor = 0;
  // The roster's version: the newest change (an item, a removal, a dropped removal).
  int64_t version() const;
  int64_t bytes() const;  // item_cost summed over the items
  const RosterItem* find(std::string_view contact) const;
  bool has_pending(std::string_view contact) const;
};

// Adds one map item (key, value) to `out`; false if it is not one of the roster's.
bool add_map_item(StoredRoster& out, std::string_view key, std::string_view value);

}  // namespace mod_roster
