#include <doctest/doctest.h>

#include <string>

#include "core/sasl/base64.hpp"
#include "core/sasl/crypto.hpp"

using parley::sasl::base64_decode;
using parley::sasl::base64_encode;

TEST_CASE("base64: RFC 4648 section 10 vectors") {
  const std::pair<const char*, const char*> v[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : v) {
    CHECK(base64_encode(plain) == encoded);
    CHECK(base64_decode(encoded).value() == plain);
  }
  CHECK(base64_encode(std::string("\x00\xFF\xFE", 3)) == "AP/+");
}

TEST_CASE("base64: round trip of random data") {
  for (size_t n = 0; n < 70; ++n) {
    const std::string data = parley::sasl::random_bytes(n);
    CHECK(base64_decode(base64_encode(data)).value() == data);
  }
}

TEST_CASE("base64: strict decoding refuses") {
  for (const char* bad : {"Zg", "Zg=", "Z", "Zm9vY", "Z===", "====", "=Zm9", "Zm=v", "Zm9v=", "Zg==Zg==",
                          "Zm9v\n", " Zm9v", "Zm9v ", "Zm9\nv", "Zm\r\n9v", "Zh==", "Zm9=", "Zm-v", "Zm_v",
                          "Zm9v====", "Zm9v\x80\x80\x80\x80", "Zg=\x01", "*m9v", "biws=",
                          "=", "=="}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(base64_decode(bad));
  }
  CHECK_FALSE(base64_decode(std::string("Zm9\0", 4)));
}
