// mod_muc's persistent rooms in the map store: the items a room is written as
// read back into the room (modules/mod_muc/room_store_codec.cpp).
#include <doctest/doctest.h>

#include <algorithm>

#include "room_store_codec.hpp"

using namespace muc;
using namespace muc::store_codec;

TEST_CASE("a room's items read back: fields, affiliations with nick and reason, history") {
  StoredRoom r;
  CHECK(read_item(r, "config", "name=Room\npersistent=1\n"));
  CHECK(read_item(r, "secret", "c2VjcmV0"));
  CHECK(read_item(r, "subject", "two\nlines"));
  CHECK(read_item(r, "subject_nick", "A"));
  CHECK(read_item(r, affiliation_key("alice@example.org"), affiliation_value("owner", "Al", "")));
  // A reason may hold newlines: it is the value's last part.
  CHECK(read_item(r, affiliation_key("bob@example.org"), affiliation_value("outcast", "", "spam\nand more")));
  CHECK(read_item(r, history_key(42), history_value(1700000000123, "<message xmlns='jabber:client'>\n</message>")));
  CHECK(r.config == "name=Room\npersistent=1\n");
  CHECK(r.secret == "c2VjcmV0");
  CHECK(r.subject == "two\nlines");
  CHECK(r.subject_nick == "A");
  REQUIRE(r.affiliations.size() == 2);
  CHECK(r.affiliations[0].jid == "alice@example.org");
  CHECK(r.affiliations[0].affiliation == "owner");
  CHECK(r.affiliations[0].nick == "Al");
  CHECK(r.affiliations[0].reason == "");
  CHECK(r.affiliations[1].affiliation == "outcast");
  CHECK(r.affiliations[1].nick == "");
  CHECK(r.affiliations[1].reason == "spam\nand more");
  // What a later save compares with is the item as stored.
  CHECK(r.stored_affiliations.at(affiliation_key("bob@example.org")) == "outcast\n\nspam\nand more");
  REQUIRE(r.history.size() == 1);
  CHECK(r.history[0].seq == 42);
  CHECK(r.history[0].ms == 1700000000123);
  CHECK(r.history[0].xml == "<message xmlns='jabber:client'>\n</message>");
}

TEST_CASE("history keys sort as their numbers; room maps and keys cannot collide with the fields") {
  std::vector<std::string> keys{history_key(10), history_key(9), history_key(100), history_key(0)};
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{history_key(0), history_key(9), history_key(10), history_key(100)});
  CHECK(history_key(UINT64_MAX).size() == 22);
  CHECK(room_map("r@conference.example.org") == std::string("r\x1f") + "r@conference.example.org");
  // An affiliation of an account named like a field is still an affiliation.
  StoredRoom r;
  CHECK(read_item(r, affiliation_key("config"), affiliation_value("member", "", "")));
  CHECK(r.config.empty());
  CHECK(r.affiliations.size() == 1);
}

TEST_CASE("items this module does not write, or malformed, are ignored") {
  StoredRoom r;
  CHECK_FALSE(read_item(r, "unknown", "x"));
  CHECK_FALSE(read_item(r, "h", "1\n<m/>"));
  CHECK_FALSE(read_item(r, std::string("h\x1f") + "12x", "1\n<m/>"));
  CHECK_FALSE(read_item(r, history_key(3), "not a time\n<m/>"));
  CHECK_FALSE(read_item(r, std::string("x\x1f") + "y", "z"));
  CHECK(r.history.empty());
  CHECK(r.affiliations.empty());
}
