#include "core/control/netstring.hpp"

#include <doctest/doctest.h>

using namespace parley::control;

TEST_CASE("encode and parse netstrings round trip any bytes") {
  const std::vector<std::string> items = {"register", "", "a,b:c\nd", std::string("\0\xff", 2), std::string(1000, 'x')};
  std::string encoded = encode_netstrings(items);
  CHECK(encoded.substr(0, 12) == "8:register,0");
  auto parsed = parse_netstrings(encoded);
  REQUIRE(parsed.has_value());
  CHECK(*parsed == items);
  CHECK(encode_netstrings({}).empty());
  CHECK(parse_netstrings("")->empty());
  CHECK(encode_request({"status"}) == "6:status,\n");
}

TEST_CASE("parse_netstrings refuses malformed input") {
  for (const char* bad : {"3:ab,", "3:abcd,", "3:abc", "3:abc;", "x:abc,", ":abc,", "03:abc,", "-1:,",
                          "3abc,", "99999999999:a,", "3:abc,\n", "3:abc,4", "65537:"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_netstrings(bad).has_value());
  }
  CHECK(parse_netstrings("0:,").has_value());
}

TEST_CASE("scan_request: complete, incomplete at every fragment, malformed") {
  const std::string request = encode_request({"passwd", "alice", "localhost", "new password, with comma"});
  for (size_t n = 0; n < request.size(); ++n) {
    CAPTURE(n);
    RequestScan s = scan_request(std::string_view(request).substr(0, n));
    CHECK(s.status == ScanStatus::incomplete);
    CHECK(s.args.empty());
  }
  RequestScan full = scan_request(request);
  REQUIRE(full.status == ScanStatus::complete);
  CHECK(full.args == std::vector<std::string>{"passwd", "alice", "localhost", "new password, with comma"});

  struct Case {
    std::string input;
    const char* error;
  };
  const Case cases[] = {
      {"\n", "empty request"},
      {"4:help,\nX", "data after"},
      {"4:help,\n\n", "data after"},
      {"help\n", "expected a netstring length"},
      {"4:help;", "expected ','"},
      {"04:help,\n", "leading zero"},
      {"4 :help,\n", "expected ':'"},
      {"20971521:", "too long"},  // kMaxRequestBytes + 1
      {"12345678901", "length too long"},
      {"4:help,x", "expected a netstring length"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    RequestScan s = scan_request(c.input);
    CHECK(s.status == ScanStatus::malformed);
    CHECK(s.error.find(c.error) != std::string::npos);
    CHECK(s.args.empty());
  }
}
