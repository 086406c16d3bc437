#include <doctest/doctest.h>

#include <string>

#include "core/sasl/saslprep.hpp"

using parley::sasl::saslprep;

TEST_CASE("SASLprep: RFC 4013 section 3 examples") {
  CHECK(saslprep("I\xC2\xAD" "X").value() == "IX");  // SOFT HYPHEN mapped to nothing
  CHECK(saslprep("user").value() == "user");
  CHECK(saslprep("USER").value() == "USER");        // case preserved
  CHECK(saslprep("\xC2\xAA").value() == "a");       // FEMININE ORDINAL INDICATOR, NFKC
  CHECK(saslprep("\xE2\x85\xA8").value() == "IX");  // ROMAN NUMERAL NINE, NFKC
  CHECK_FALSE(saslprep("\x07"));                    // prohibited
  CHECK_FALSE(saslprep("\xD8\xA7" "1"));            // bidi: RandALCat not at both ends
}

TEST_CASE("SASLprep: mapping, prohibitions and hostile input") {
  CHECK(saslprep("a\xC2\xA0" "b").value() == "a b");  // non-ASCII space mapped to SPACE
  CHECK(saslprep("").value().empty());
  CHECK(saslprep("\xC2\xAD").value().empty());
  CHECK_FALSE(saslprep("\xF0\x9F\x8D\xBA"));          // unassigned in Unicode 3.2: refused for stored strings
  CHECK_FALSE(saslprep("a\xFF"));
  CHECK_FALSE(saslprep("\xC0\xAF"));
  CHECK_FALSE(saslprep(std::string("a\0b", 3)));
  CHECK_FALSE(saslprep("\xEF\xBF\xBE"));               // non-character
  CHECK_FALSE(saslprep("a\xE2\x80\x8E"));              // LEFT-TO-RIGHT MARK
}

TEST_CASE("SASLprep refuses input whose preparation is not stable (PR-29)") {
  // libidn prepares U+1100 U+0301 U+1161 U+0323 to U+AC00 U+0301 U+0323, and that
  // to U+AC00 U+0323 U+0301: the password would differ between a path that
  // prepares it once and one that prepares it twice.
  CHECK_FALSE(saslprep("pw\xE1\x84\x80\xCC\x81\xE1\x85\xA1\xCC\xA3"));
  CHECK_FALSE(saslprep("\xE1\x84\x92\xCC\x88\xE1\x85\xA2\xE3\x82\x99"));
  // Stable non-ASCII input is prepared as before, and to a fixed point.
  auto once = saslprep("p\xC3\xA4ss\xE2\x85\xA8");
  REQUIRE(once);
  CHECK(saslprep(*once).value() == *once);
}
