#include <doctest/doctest.h>

#include <string>

#include "core/addr/utf8.hpp"

using parley::is_clean_utf8;
using parley::utf8_decode;

TEST_CASE("utf8_decode accepts well-formed text") {
  auto d = utf8_decode("a\xC3\xBC\xE2\x82\xAC\xF0\x9F\x8D\xBA");
  REQUIRE(d);
  CHECK(*d == std::u32string{U'a', 0xFC, 0x20AC, 0x1F37A});
  CHECK(utf8_decode("")->empty());
  CHECK(utf8_decode("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST_CASE("utf8_decode refuses malformed text") {
  for (const char* bad : {"\xC0\xAF",              // overlong '/'
                          "\xE0\x80\xAF",          // overlong '/'
                          "\xF0\x80\x80\xAF",      // overlong '/'
                          "\xC1\x80",              // overlong '@'
                          "\xED\xA0\x80",          // surrogate
                          "\xF4\x90\x80\x80",      // > U+10FFFF
                          "\xF8\x88\x80\x80\x80",  // 5-byte form
                          "\xFF", "\x80", "a\xC3", "\xE2\x82", "\xC3\x28"}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(utf8_decode(bad));
    CHECK_FALSE(is_clean_utf8(bad));
  }
}

TEST_CASE("is_clean_utf8 refuses NUL") {
  CHECK(is_clean_utf8("abc"));
  CHECK_FALSE(is_clean_utf8(std::string("a\0b", 3)));
  CHECK(utf8_decode(std::string("a\0b", 3)));  // well-formed, only unclean
}
