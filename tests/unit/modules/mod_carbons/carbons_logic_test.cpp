#include <doctest/doctest.h>

#include "carbons_logic.hpp"

using namespace parley::mod_carbons;

namespace {

MessageFacts msg(std::string_view type, bool body) {
  MessageFacts m;
  m.type = type;
  m.has_body = body;
  return m;
}

using Ids = std::vector<uint64_t>;

}  // namespace

TEST_CASE("chat messages are eligible, with or without a body (chat states too)") {
  CHECK(eligible(msg("chat", true), Direction::received));
  CHECK(eligible(msg("chat", false), Direction::received));
  CHECK(eligible(msg("chat", true), Direction::sent));
  CHECK(eligible(msg("chat", false), Direction::sent));
}

TEST_CASE("normal messages are eligible with a body only; no type is normal") {
  CHECK(eligible(msg("normal", true), Direction::received));
  CHECK(eligible(msg("", true), Direction::received));
  CHECK(eligible(msg("", true), Direction::sent));
  CHECK_FALSE(eligible(msg("normal", false), Direction::received));
  CHECK_FALSE(eligible(msg("", false), Direction::sent));
}

TEST_CASE("error, groupchat, headline and unknown types are not eligible") {
  for (const char* type : {"error", "groupchat", "headline", "bogus"}) {
    CHECK_FALSE(eligible(msg(type, true), Direction::received));
    CHECK_FALSE(eligible(msg(type, true), Direction::sent));
  }
}

TEST_CASE("private, no-copy and copies are never copied") {
  MessageFacts m = msg("chat", true);
  m.is_private = true;
  CHECK_FALSE(eligible(m, Direction::received));
  CHECK_FALSE(eligible(m, Direction::sent));
  m = msg("chat", true);
  m.no_copy = true;
  CHECK_FALSE(eligible(m, Direction::received));
  CHECK_FALSE(eligible(m, Direction::sent));
  m = msg("chat", false);
  m.is_carbon = true;
  CHECK_FALSE(eligible(m, Direction::received));
  CHECK_FALSE(eligible(m, Direction::sent));
}

TEST_CASE("IM payloads make a message eligible without a body (XEP-0280 6.1)") {
  // A receipt, a chat state or a chat marker on a normal message (or none).
  MessageFacts m = msg("", false);
  m.im_payload = true;
  CHECK(eligible(m, Direction::received));
  CHECK(eligible(m, Direction::sent));
  m.type = "normal";
  CHECK(eligible(m, Direction::received));
  // Not on a groupchat or an error, nor with <private/>.
  for (const char* type : {"groupchat", "error"}) {
    m.type = type;
    CHECK_FALSE(eligible(m, Direction::received));
    CHECK_FALSE(eligible(m, Direction::sent));
  }
  m = msg("", false);
  m.im_payload = true;
  m.is_private = true;
  CHECK_FALSE(eligible(m, Direction::sent));
}

TEST_CASE("a MUC PM is copied when the user sends it, not when an occupant sends it") {
  MessageFacts m = msg("chat", true);
  m.from_muc = true;
  m.peer_is_full = true;
  CHECK_FALSE(eligible(m, Direction::received));  // from an occupant JID
  CHECK(eligible(m, Direction::sent));            // to an occupant JID
  // Without a body or a type: still the user's PM.
  m = msg("", false);
  m.from_muc = true;
  m.peer_is_full = true;
  CHECK(eligible(m, Direction::sent));
  CHECK_FALSE(eligible(m, Direction::received));
  // muc#user traffic to or from the room's bare JID follows the general rules.
  m = msg("", false);
  m.from_muc = true;
  CHECK_FALSE(eligible(m, Direction::received));
  CHECK_FALSE(eligible(m, Direction::sent));
  m.has_body = true;
  CHECK(eligible(m, Direction::received));
}

TEST_CASE("MUC invitations, direct or mediated, are copied both ways") {
  MessageFacts m = msg("", false);
  m.muc_invitation = true;
  CHECK(eligible(m, Direction::received));
  CHECK(eligible(m, Direction::sent));
  // A mediated one comes from the room with its muc#user <x/>.
  m.from_muc = true;
  CHECK(eligible(m, Direction::received));
  m.peer_is_full = true;
  CHECK(eligible(m, Direction::received));
  m.no_copy = true;
  CHECK_FALSE(eligible(m, Direction::received));
  m = msg("groupchat", false);
  m.muc_invitation = true;
  CHECK_FALSE(eligible(m, Direction::received));
}

TEST_CASE("a message to a full JID: every other session, not the one that got it") {
  std::vector<UserSession> s = {{1, "phone", true, 0}, {2, "laptop", true, 5}, {3, "tablet", false, 0}};
  CHECK(received_copy_targets(s, 1, "phone", "") == Ids{2, 3});
  CHECK(received_copy_targets(s, 2, "laptop", "") == Ids{1, 3});
}

TEST_CASE("a message to the bare JID given to one resource: the others get copies") {
  // laptop has the highest priority: the router gave it to laptop alone.
  std::vector<UserSession> s = {{1, "phone", true, 0}, {2, "laptop", true, 5}, {3, "bot", true, -1}};
  CHECK(received_copy_targets(s, 2, "", "") == Ids{1, 3});
}

TEST_CASE("a chat message to a resource that is not bound is handled as to the bare JID") {
  std::vector<UserSession> s = {{1, "phone", true, 0}, {2, "laptop", true, 5}};
  CHECK(received_copy_targets(s, 2, "gone", "") == Ids{1});
}

TEST_CASE("a bare JID message given to several resources of equal priority: one sends the copies, none to them") {
  std::vector<UserSession> s = {{4, "a", true, 1}, {7, "b", true, 1}, {9, "c", true, 0}, {11, "d", false, 0}};
  CHECK(received_copy_targets(s, 4, "", "") == Ids{9, 11});
  CHECK(received_copy_targets(s, 7, "", "").empty());
}

TEST_CASE("a session whose presence changed since routing still counts as having it") {
  // Session 5 went unavailable after the message was routed to both 5 and 6.
  std::vector<UserSession> s = {{5, "a", false, 0}, {6, "b", true, 0}};
  // 5 knows it got it, and 6 is the router's choice now: 5 (lowest id) copies, to nobody.
  CHECK(received_copy_targets(s, 5, "", "").empty());
  // 6 cannot know that 5 got it too: 5 gets a copy on top of its original
  // (the rare case docs/modules/mod_carbons.md names).
  CHECK(received_copy_targets(s, 6, "", "") == Ids{5});
}

TEST_CASE("a message to oneself: the sending resource gets no received copy") {
  std::vector<UserSession> s = {{1, "phone", true, 0}, {2, "laptop", true, 0}, {3, "tablet", true, 0}};
  CHECK(received_copy_targets(s, 2, "laptop", "phone") == Ids{3});
}

TEST_CASE("sent copies go to every other session; none for a message to oneself") {
  std::vector<UserSession> s = {{1, "phone", true, 0}, {2, "laptop", false, -3}, {3, "tablet", true, 0}};
  CHECK(sent_copy_targets(s, 1, false) == Ids{2, 3});
  CHECK(sent_copy_targets(s, 1, true).empty());
  CHECK(sent_copy_targets({{1, "phone", true, 0}}, 1, false).empty());
}
