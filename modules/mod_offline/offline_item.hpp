// How mod_offline keeps a message in the map store (issue 11): one map per user,
// one item per message, in arrival order (the map keeps the order items were first
// put). The key only has to be unique; the value carries the sender (for
// max_per_sender, counted again when a user's queue is read after a start) and the
// stanza as it will be delivered (its <delay/> included). Pure: unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::offline {

struct StoredItem {
  std::string_view sender;  // the sender's bare JID ("" for rows moved from before max_per_sender)
  std::string_view xml;
};

// "SENDER\nXML": a JID holds no line feed.
std::string encode_item(std::string_view sender, std::string_view xml);
// nullopt: not a value encode_item made.
std::optional<StoredItem> decode_item(std::string_view value);

// A key unique across loops and restarts: the wall clock's microseconds, the loop and a
// counter of that loop, fixed-width hex ("m" + 16 + 4 + 8 digits).
std::string item_key(uint64_t unix_us, uint32_t loop, uint32_t counter);
// The key a row of the old table (mod_offline_messages) gets when it is moved.
std::string moved_key(int64_t row_id);

}  // namespace parley::offline
