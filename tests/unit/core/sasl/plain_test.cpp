#include <doctest/doctest.h>

#include <string>

#include "core/sasl/plain.hpp"

using parley::sasl::Failure;
using parley::sasl::parse_plain;

namespace {
std::string s(const char* data, size_t n) { return std::string(data, n); }
}  // namespace

TEST_CASE("PLAIN: well-formed messages") {
  auto m = parse_plain(s("\0user\0pencil", 12)).value();
  CHECK(m.authzid.empty());
  CHECK(m.authcid == "user");
  CHECK(m.password == "pencil");

  m = parse_plain(s("juliet@example.com\0juliet\0r0m30", 31)).value();
  CHECK(m.authzid == "juliet@example.com");
  CHECK(m.authcid == "juliet");
  CHECK(m.password == "r0m30");

  m = parse_plain(s("\0I\xC2\xAD" "X\0p w\xC2\xAD", 11)).value();
  CHECK(m.authcid == "IX");               // SASLprep'd
  CHECK(m.password == "p w\xC2\xAD");     // left for verify_password
}

TEST_CASE("PLAIN: malformed messages") {
  const std::string cases[] = {
      "",
      "userpencil",
      s("\0userpencil", 11),
      s("userpencil\0", 11),
      s("\0\0pencil", 8),            // empty authcid
      s("\0user\0", 6),              // empty password
      s("\0\0", 2),
      s("\0user\0pen\0cil", 14),     // third NUL
      s("\0\0\0", 3),
      s("\0us\xFF" "er\0pencil", 14),
      s("\xC0\xAF\0user\0pencil", 14),
      s("\0user\0pen\xE2\x82", 11),
      s("\0a\x07\0pencil", 10),      // authcid fails SASLprep
      s("\0\xC2\xAD\0pencil", 9),    // authcid SASLprep's to nothing
      std::string("\0", 1) + std::string(1024, 'u') + std::string("\0", 1) + "p",
      std::string("\0", 1) + "u" + std::string("\0", 1) + std::string(1024, 'p'),
      std::string(3072, 'z') + std::string("\0", 1) + "u" + std::string("\0", 1) + "p",
  };
  for (const auto& c : cases) {
    CAPTURE(c);
    auto r = parse_plain(c);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Failure::malformed_request);
  }
  CHECK(parse_plain(std::string("\0", 1) + std::string(1023, 'u') + std::string("\0", 1) + std::string(1023, 'p')));
}
