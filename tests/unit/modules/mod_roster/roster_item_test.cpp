// Roster set checks (RFC 6121 2.1, 2.3.3, 2.5), contact JIDs, stored
// groups, versioned gets (2.6) and the per-user line.
#include <doctest/doctest.h>

#include <string>

#include "roster_item.hpp"
#include "user_queue.hpp"

using namespace mod_roster;

namespace {

// A set whose item's 'jid' the host prepared to `jid`.
RosterSetRequest one_item(const char* jid) {
  RosterSetRequest r;
  r.item_count = 1;
  r.jid = parley::Jid::prepared(jid);
  return r;
}
// A set whose item's 'jid' the host refused.
RosterSetRequest bad_item(parley::JidError error) {
  RosterSetRequest r;
  r.item_count = 1;
  r.jid = parley::unexpected(error);
  return r;
}

std::string condition(const SetCheck& c) { return c.error ? c.error->condition : ""; }

const RosterSetLimits limits{10, 8};

}  // namespace

TEST_CASE("a valid set: name and groups kept, the contact the bare JID") {
  auto r = one_item("nurse@example.com");
  r.name = "Nurse";
  r.groups = {"Servants", "Friends"};
  auto c = check_roster_set(r, "juliet@example.com", limits);
  REQUIRE(c.set);
  CHECK(c.set->contact == "nurse@example.com");
  CHECK_FALSE(c.set->remove);
  CHECK(c.set->name == "Nurse");
  CHECK(c.set->groups == std::vector<std::string>{"Servants", "Friends"});
}

TEST_CASE("2.3.3 exactly one item") {
  RosterSetRequest none;
  CHECK(condition(check_roster_set(none, "j@e", limits)) == "bad-request");
  auto two = one_item("a@b");
  two.item_count = 2;
  CHECK(condition(check_roster_set(two, "j@e", limits)) == "bad-request");
}

TEST_CASE("the item's jid: required, well-formed, bare, not the user's own") {
  RosterSetRequest no_jid;
  no_jid.item_count = 1;
  CHECK(condition(check_roster_set(no_jid, "j@e", limits)) == "bad-request");
  for (auto error : {parley::JidError::empty, parley::JidError::bad_localpart, parley::JidError::bad_domainpart,
                     parley::JidError::bad_resourcepart, parley::JidError::bad_utf8, parley::JidError::too_long})
    CHECK(condition(check_roster_set(bad_item(error), "j@e", limits)) == "jid-malformed");
  CHECK(condition(check_roster_set(one_item("a@b/res"), "j@e", limits)) == "bad-request");
  CHECK(condition(check_roster_set(one_item("j@e"), "j@e", limits)) == "not-allowed");
}

TEST_CASE("2.3.3 not-acceptable: long name, empty group, long group; bad-request: duplicate group") {
  auto r = one_item("a@b");
  r.name = std::string(11, 'n');
  CHECK(condition(check_roster_set(r, "j@e", limits)) == "not-acceptable");
  r.name = std::string(10, 'n');
  CHECK(check_roster_set(r, "j@e", limits).set);
  r.groups = {""};
  CHECK(condition(check_roster_set(r, "j@e", limits)) == "not-acceptable");
  r.groups = {std::string(9, 'g')};
  CHECK(condition(check_roster_set(r, "j@e", limits)) == "not-acceptable");
  r.groups = {"a", "b", "a"};
  CHECK(condition(check_roster_set(r, "j@e", limits)) == "bad-request");
}

TEST_CASE("groups per item are limited: one more than max_groups is not-acceptable") {
  // Before the limit, any number of groups was accepted (issue 9, item 6).
  RosterSetLimits few{10, 8, 3};
  auto r = one_item("a@b");
  r.groups = {"a", "b", "c"};
  CHECK(check_roster_set(r, "j@e", few).set);
  r.groups.push_back("d");
  CHECK(condition(check_roster_set(r, "j@e", few)) == "not-acceptable");
  // The default is a bound too.
  r.groups.clear();
  for (int i = 0; i < 33; ++i) r.groups.push_back("g" + std::to_string(i));
  CHECK(condition(check_roster_set(r, "j@e", RosterSetLimits{})) == "not-acceptable");
  r.groups.pop_back();
  CHECK(check_roster_set(r, "j@e", RosterSetLimits{}).set);
}

TEST_CASE("item_cost: stored bytes of contact, name and groups plus the item's markup") {
  CHECK(item_cost("a@b", std::nullopt, "") == 3 + item_overhead_bytes);
  CHECK(item_cost("a@b", std::string("Ann"), encode_groups({"xy", "z"})) == 3 + 3 + 7 + item_overhead_bytes);
}

TEST_CASE("utf8_prefix never splits a character") {
  CHECK(utf8_prefix("hello", 10) == 5);
  CHECK(utf8_prefix("hello", 3) == 3);
  const std::string e_acute = "\xC3\xA9";              // 2 bytes
  const std::string text = "ab" + e_acute + "cd";       // a b é c d
  CHECK(utf8_prefix(text, 3) == 2);                     // not half of é
  CHECK(utf8_prefix(text, 4) == 4);
  const std::string clef = "\xF0\x9D\x84\x9E";      // 4 bytes
  CHECK(utf8_prefix(clef + "x", 3) == 0);
  CHECK(utf8_prefix(clef + "x", 4) == 4);
  CHECK(utf8_prefix("", 0) == 0);
}

TEST_CASE("2.1.2.5 subscription: 'remove' removes, any other value is ignored") {
  auto r = one_item("a@b");
  r.subscription = "remove";
  r.groups = {""};  // ignored for a remove
  auto c = check_roster_set(r, "j@e", limits);
  REQUIRE(c.set);
  CHECK(c.set->remove);
  r.subscription = "both";
  r.groups = {"g"};
  c = check_roster_set(r, "j@e", limits);
  REQUIRE(c.set);
  CHECK_FALSE(c.set->remove);
}

TEST_CASE("an empty name is no name") {
  auto r = one_item("a@b");
  r.name = "";
  auto c = check_roster_set(r, "j@e", limits);
  REQUIRE(c.set);
  CHECK_FALSE(c.set->name);
}

TEST_CASE("groups round-trip, any text") {
  std::vector<std::string> groups{"Friends", "a:b", "multi\nline", "12:34", ""};
  CHECK(decode_groups(encode_groups(groups)) == groups);
  CHECK(decode_groups("").empty());
  CHECK(decode_groups("99:short").empty());  // damaged: nothing invented
}

TEST_CASE("2.6 versioned get: the whole roster or a delta") {
  CHECK(plan_versioned_get(std::nullopt, 5).full);         // no ver: no versioning asked
  CHECK(plan_versioned_get("", 5).full);                   // empty: nothing cached
  CHECK(plan_versioned_get("bogus", 5).full);              // not ours
  CHECK(plan_versioned_get("6", 5).full);                  // from the future
  CHECK(plan_versioned_get("-1", 5).full);
  auto same = plan_versioned_get("5", 5);
  CHECK_FALSE(same.full);
  CHECK(same.since == 5);
  auto older = plan_versioned_get("2", 5);
  CHECK_FALSE(older.full);
  CHECK(older.since == 2);
  CHECK(parse_version("0") == 0);
  CHECK_FALSE(parse_version("1e3"));
}

TEST_CASE("the per-user line: in order, one at a time, users independent") {
  UserLines<std::string> q;
  CHECK(q.enter("a@x", "a1"));
  CHECK_FALSE(q.enter("a@x", "a2"));
  CHECK(q.enter("b@x", "b1"));
  CHECK(q.take_head("a@x") == "a1");
  CHECK(q.waiting("a@x") == 2);  // the head keeps its place while it runs
  CHECK(q.leave("a@x"));
  CHECK(q.take_head("a@x") == "a2");
  CHECK_FALSE(q.leave("a@x"));
  CHECK(q.waiting("a@x") == 0);
  CHECK(q.waiting("b@x") == 1);
  CHECK(q.users() == 1);
  CHECK(q.take_head("nobody@x").empty());
  CHECK_FALSE(q.leave("nobody@x"));
}
