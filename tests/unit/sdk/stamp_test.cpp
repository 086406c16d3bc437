// XEP-0082 stamps: written with milliseconds in UTC, read in every form the
// XEP allows (fraction, offsets), and refused when they name no instant.
#include <doctest/doctest.h>

#include "parley/sdk/stamp.hpp"

TEST_CASE("xep0082_stamp writes UTC with milliseconds, before the epoch too") {
  CHECK(parley::xep0082_stamp(int64_t{0}) == "1970-01-01T00:00:00.000Z");
  CHECK(parley::xep0082_stamp(int64_t{1031699305123}) == "2002-09-10T23:08:25.123Z");
  CHECK(parley::xep0082_stamp(int64_t{-1}) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("xep0082_parse_us reads what XEP-0082 allows and refuses the rest") {
  using parley::xep0082_parse_us;
  CHECK(xep0082_parse_us("1970-01-01T00:00:00Z") == 0);
  CHECK(xep0082_parse_us("2002-09-10T23:08:25.123Z") == int64_t{1031699305123000});
  CHECK(xep0082_parse_us("2002-09-10T23:08:25.123456789Z") == int64_t{1031699305123456});
  CHECK(xep0082_parse_us("2002-09-10T16:08:25-07:00") == int64_t{1031699305} * 1000000);
  CHECK(xep0082_parse_us("2002-09-11T01:08:25+02:00") == int64_t{1031699305} * 1000000);
  CHECK(xep0082_parse_us("2024-02-29T00:00:00Z").has_value());       // a leap day
  CHECK(xep0082_parse_us("1969-12-31T23:59:59Z") == -1000000);
  // What round-trips through the writer.
  CHECK(xep0082_parse_us(parley::xep0082_stamp(int64_t{1700000000456})) == int64_t{1700000000456000});
  for (const char* bad : {"", "yesterday", "2002-09-10T23:08:25", "2002-09-10 23:08:25Z", "2002-09-10T23:08:25.Z",
                          "2002-09-10T23:08:25.1234567890Z", "2023-02-29T00:00:00Z", "2002-13-01T00:00:00Z",
                          "2002-04-31T00:00:00Z", "2002-09-10T24:00:00Z", "2002-09-10T23:08:25+0200",
                          "2002-09-10T23:08:25Zx", "2002-09-10T23:08:25+24:00"}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(xep0082_parse_us(bad).has_value());
  }
}
