// The stored form of a roster in the map store (roster_codec.hpp): items round-trip
// with every field, removals, the floor, the value the old tables' SELECT builds.
#include <doctest/doctest.h>

#include <string>

#include "roster_codec.hpp"

using namespace mod_roster;

TEST_CASE("an item round-trips with its state, name and groups") {
  RosterItem item;
  item.jid = "romeo@example.net";
  item.state.sub = Subscription::both;
  item.state.pending_out = true;
  item.state.approved = true;
  item.name = "Romeo \"M\" 12:3 ";
  item.groups = {"Friends", "a:b"};
  item.ver = 42;
  auto e = decode_entry(item.jid, encode_item(item));
  REQUIRE(e);
  CHECK_FALSE(e->removed);
  CHECK(e->item.jid == item.jid);
  CHECK(e->item.state.sub == Subscription::both);
  CHECK(e->item.state.pending_out);
  CHECK(e->item.state.approved);
  CHECK(e->item.name == item.name);
  CHECK(e->item.groups == std::vector<std::string>{"Friends", "a:b"});
  CHECK(e->item.ver == 42);
}

TEST_CASE("no name is not an empty name") {
  RosterItem item;
  item.jid = "a@b";
  item.ver = 1;
  auto e = decode_entry(item.jid, encode_item(item));
  REQUIRE(e);
  CHECK_FALSE(e->item.name.has_value());
  item.name = "";
  e = decode_entry(item.jid, encode_item(item));
  REQUIRE(e);
  CHECK(e->item.name == std::string());
}

TEST_CASE("the value the move from the old table builds decodes") {
  // CAST(ver) || ' ' || subscription || ' ' || ask || ' ' || approved || ' ' || name part || groups
  auto e = decode_entry("nurse@example.com", "5 from 0 1 5:Nurse8:Servants");
  REQUIRE(e);
  CHECK(e->item.state.sub == Subscription::from);
  CHECK_FALSE(e->item.state.pending_out);
  CHECK(e->item.state.approved);
  CHECK(e->item.name == std::string("Nurse"));
  CHECK(e->item.groups == std::vector<std::string>{"Servants"});
  CHECK(e->item.ver == 5);
}

TEST_CASE("removals, pending requests and the floor make the roster's version") {
  StoredRoster r;
  CHECK(add_map_item(r, "i/a@b", "3 none 0 0 -"));
  CHECK(add_map_item(r, "i/c@d", encode_tombstone(7)));
  CHECK(add_map_item(r, "p/e@f", "<presence/>"));
  CHECK(add_map_item(r, std::string(floor_key), "9"));
  CHECK_FALSE(add_map_item(r, "i/x@y", "garbage"));
  CHECK_FALSE(add_map_item(r, "other", "1"));
  CHECK(r.items.size() == 1);
  CHECK(r.removed.size() == 1);
  CHECK(r.removed[0] == std::make_pair(std::string("c@d"), int64_t{7}));
  CHECK(r.has_pending("e@f"));
  CHECK_FALSE(r.has_pending("a@b"));
  CHECK(r.find("a@b") != nullptr);
  CHECK(r.find("c@d") == nullptr);
  CHECK(r.version() == 9);
  r.floor = 0;
  CHECK(r.version() == 7);
}

TEST_CASE("damaged values are refused, not misread") {
  CHECK_FALSE(decode_entry("a@b", ""));
  CHECK_FALSE(decode_entry("a@b", "x none 0 0 -"));
  CHECK_FALSE(decode_entry("a@b", "1 sometimes 0 0 -"));
  CHECK_FALSE(decode_entry("a@b", "1 none 0 0 99:short"));
  CHECK_FALSE(decode_entry("a@b", "1 none 0 0 noname"));
}

TEST_CASE("the compact roster answer (format='lines') parses back, groups with newlines included") {
  std::string text = "a@b both " + encode_groups({"Friends", "two\nlines"}) + "\n" + "c@d none \n";
  auto entries = parley::AccountQuery::roster_lines(text);
  REQUIRE(entries);
  REQUIRE(entries->size() == 2);
  CHECK((*entries)[0].jid == "a@b");
  CHECK((*entries)[0].subscription == "both");
  CHECK((*entries)[0].groups == std::vector<std::string>{"Friends", "two\nlines"});
  CHECK((*entries)[1].jid == "c@d");
  CHECK((*entries)[1].groups.empty());
  CHECK(parley::AccountQuery::roster_lines("")->empty());
  CHECK_FALSE(parley::AccountQuery::roster_lines("a@b both"));
  CHECK_FALSE(parley::AccountQuery::roster_lines("a@b both 9:x\n"));
}
