#include <doctest/doctest.h>

#include "last_logic.hpp"

using namespace parley::mod_last;

TEST_CASE("only a from or both subscription sees the last activity") {
  CHECK(subscription_allows("from"));
  CHECK(subscription_allows("both"));
  CHECK_FALSE(subscription_allows("to"));
  CHECK_FALSE(subscription_allows("none"));
  CHECK_FALSE(subscription_allows(""));
}

TEST_CASE("seconds since") {
  CHECK(seconds_since(100, 1003) == 903);
  CHECK(seconds_since(1003, 100) == 0);  // a clock that went back
}

TEST_CASE("a stored record: SECONDS:STATUS, the status may hold colons") {
  CHECK(format_record(1700000000, "Gone: back soon") == "1700000000:Gone: back soon");
  auto r = parse_record("1700000000:Gone: back soon");
  REQUIRE(r);
  CHECK(r->seconds == 1700000000);
  CHECK(r->status == "Gone: back soon");
  auto empty = parse_record("5:");
  REQUIRE(empty);
  CHECK(empty->status.empty());
  CHECK_FALSE(parse_record(""));
  CHECK_FALSE(parse_record(":x"));
  CHECK_FALSE(parse_record("12a:x"));
  CHECK_FALSE(parse_record("123"));
}

TEST_CASE("the last session's end with the status of the unavailable presence before it") {
  ActivityTracker t;
  // Going unavailable with no other available resource is recorded at once.
  CHECK(t.on_unavailable("juliet@capulet.com", "Heading Home", false) == std::optional<std::string>("Heading Home"));
  // Closing that (now unavailable) last session keeps the status.
  CHECK(t.on_closed("juliet@capulet.com", false, false, false) == std::optional<std::string>("Heading Home"));
  CHECK(t.size() == 0);
}

TEST_CASE("nothing recorded while another resource is available") {
  ActivityTracker t;
  CHECK_FALSE(t.on_unavailable("j@c", "brb", true).has_value());
  CHECK_FALSE(t.on_closed("j@c", true, true, true).has_value());
  // The last available resource ends abruptly: an unavailable without status.
  CHECK(t.on_closed("j@c", true, true, false) == std::optional<std::string>(""));
  // The remaining (unavailable) session ends later.
  CHECK(t.on_closed("j@c", false, false, false) == std::optional<std::string>(""));
}

TEST_CASE("an abrupt end forgets an earlier status") {
  ActivityTracker t;
  CHECK(t.on_unavailable("j@c", "away", false).has_value());
  // The session becomes available again, then the connection drops.
  CHECK(t.on_closed("j@c", true, false, false) == std::optional<std::string>(""));
}

TEST_CASE("a removed account records nothing more") {
  ActivityTracker t;
  t.removed("j@c", true);
  CHECK_FALSE(t.on_unavailable("j@c", "bye", false).has_value());
  CHECK_FALSE(t.on_closed("j@c", true, true, false).has_value());
  CHECK_FALSE(t.on_closed("j@c", false, false, false).has_value());
  CHECK(t.size() == 0);
  // Once its sessions are gone, a new account of that name is recorded again.
  CHECK(t.on_closed("j@c", false, false, false).has_value());
  t.removed("k@c", true);
  t.registered("k@c");
  CHECK(t.on_closed("k@c", false, false, false).has_value());
}
