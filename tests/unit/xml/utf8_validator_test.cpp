// xml/utf8_validator.hpp: RFC 3629 UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF) and no NUL, over a stream cut anywhere; the 16-byte ASCII steps give what a
// byte at a time gives.
#include "xml/utf8_validator.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

using parley::xml::Utf8Validator;

namespace {

// A byte at a time, as RFC 3629's table reads: the reference the validator must agree with.
class Reference {
 public:
  size_t validate(std::string_view bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      const auto b = static_cast<uint8_t>(bytes[i]);
      if (need_ > 0) {
        if (b < lo_ || b > hi_) return i;
        --need_;
        lo_ = 0x80;
        hi_ = 0xBF;
        continue;
      }
      if (b == 0) return i;
      if (b < 0x80) continue;
      uint8_t lo = 0x80, hi = 0xBF, need = 0;
      if (b >= 0xC2 && b <= 0xDF) need = 1;
      else if (b == 0xE0) need = 2, lo = 0xA0;
      else if (b == 0xED) need = 2, hi = 0x9F;
      else if (b >= 0xE1 && b <= 0xEF) need = 2;
      else if (b == 0xF0) need = 3, lo = 0x90;
      else if (b >= 0xF1 && b <= 0xF3) need = 3;
      else if (b == 0xF4) need = 3, hi = 0x8F;
      else return i;
      need_ = need, lo_ = lo, hi_ = hi;
    }
    return bytes.size();
  }
  bool at_boundary() const { return need_ == 0; }

 private:
  uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

size_t whole(std::string_view s) {
  Utf8Validator v;
  return v.validate(s);
}

}  // namespace

TEST_CASE("UTF-8: valid text of every length passes; the first bad byte is found wherever it is") {
  for (size_t len = 0; len < 70; ++len) {
    const std::string ascii(len, 'a');
    CHECK(whole(ascii) == len);
    for (size_t at = 0; at < len; ++at) {
      for (char bad : {'\0', '\xff', '\x80', '\xc0'}) {
        std::string s = ascii;
        s[at] = bad;
        CHECK(whole(s) == at);
      }
    }
  }
  CHECK(whole("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and then plain text, long enough") == 47);
  // The first byte that cannot continue the sequence is the bad one.
  CHECK(whole("0123456789abcdef\xed\xa0\x80") == 17);      // a surrogate
  CHECK(whole("0123456789abcdef0123\xe0\x80\xaf") == 21);  // an overlong form
  CHECK(whole("0123456789abcdef\xf4\x90\x80\x80") == 17);  // above U+10FFFF
}

TEST_CASE("UTF-8: a sequence cut between two pieces is completed by the next") {
  Utf8Validator v;
  const std::string text = std::string(20, 'x') + "\xf0\x9f\x98\x80" + std::string(20, 'y');
  CHECK(v.validate(std::string_view(text).substr(0, 22)) == 22);
  CHECK_FALSE(v.at_boundary());
  CHECK(v.validate(std::string_view(text).substr(22)) == text.size() - 22);
  CHECK(v.at_boundary());
}

TEST_CASE("UTF-8: random streams in random pieces agree with a byte at a time") {
  std::mt19937 rng(20261207);
  const char* samples[] = {"a", "<message to='x'>", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\xff",
                           "\0", "\xed\xa0\x80", "\xe0\x80", "\xf4\x90", "0123456789abcdef0123456789"};
  for (int round = 0; round < 3000; ++round) {
    std::string stream;
    const int parts = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < parts; ++i) {
      // Mostly the valid pieces: invalid ones would end most streams at once.
      const size_t k = rng() % 100 < 90 ? std::vector<size_t>{0, 1, 2, 3, 4, 11}[rng() % 6] : rng() % 12;
      const std::string_view piece = k == 7 ? std::string_view("\0", 1) : std::string_view(samples[k]);
      stream.append(piece);
    }
    Utf8Validator v;
    Reference r;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = 1 + rng() % 40;
      const std::string_view piece = std::string_view(stream).substr(pos, n);
      const size_t got = v.validate(piece), want = r.validate(piece);
      REQUIRE(got == want);
      REQUIRE(v.at_boundary() == r.at_boundary());
      if (got < piece.size()) break;
      pos += piece.size();
    }
  }
}
