// mod_muc: how a persistent room is encoded in the map store's items
// (room_store.cpp says the layout). Pure: no host calls, unit-tested in
// tests/unit/modules/mod_muc/.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace muc {

// A persistent room as read from the store, on its way to its loop.
struct StoredRoom {
  std::string jid, secret, config, subject, subject_nick;
  struct Affiliation {
    std::string jid, affiliation, reason, nick;
  };
  std::vector<Affiliation> affiliations;
  struct Message {
    uint64_t seq;
    int64_t ms;
    std::string xml;
  };
  std::vector<Message> history;  // oldest first
  // The affiliations' items as stored (key -> value): what later saves compare with.
  std::map<std::string, std::string> stored_affiliations;
};

// The encoding of a room's items.
namespace store_codec {
// Separates a name's prefix from a JID (0x1f is never in a JID or in XML).
constexpr char kSep = '\x1f';
std::string room_map(std::string_view room_jid);     // the room's map ("user" of the map store)
std::string affiliation_key(std::string_view bare);  // in the room's map
std::string affiliation_value(std::string_view affiliation, std::string_view nick, std::string_view reason);
std::string history_key(uint64_t seq);  // sorts as the number does
std::string history_value(int64_t ms, std::string_view xml);
// One item of a room's map into `room` (false: not an item this module writes).
bool read_item(StoredRoom& room, std::string_view key, std::string_view value);
}  // namespace store_codec

}  // namespace muc
