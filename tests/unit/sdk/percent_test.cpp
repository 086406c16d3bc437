// parley/sdk/percent.hpp: RFC 3986 percent-decoding, fragmented and malformed input.
#include <doctest/doctest.h>

#include <string>

#include "parley/sdk/percent.hpp"

TEST_CASE("percent_decode: escapes of either case decoded, the rest kept as it is") {
  CHECK(parley::percent_decode("") == std::string());
  CHECK(parley::percent_decode("plain/path.txt") == std::string("plain/path.txt"));
  CHECK(parley::percent_decode("a%20b%2fc%2Fd") == std::string("a b/c/d"));
  CHECK(parley::percent_decode("%41%42%43") == std::string("ABC"));
  CHECK(parley::percent_decode("%00") == std::string(1, '\0'));  // the caller says whether a NUL may be
  CHECK(parley::percent_decode("%e2%82%ac") == std::string("\xe2\x82\xac"));
  CHECK(parley::percent_decode("100%25") == std::string("100%"));
}

TEST_CASE("percent_decode: a '%' without two hex digits after it is refused") {
  for (const char* bad : {"%", "%4", "a%", "a%4", "%G1", "%1G", "%%41", "%-1", "% 1", "ab%zz"})
    CHECK_MESSAGE(!parley::percent_decode(bad), bad);
}
