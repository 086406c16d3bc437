// xml/utf8_validator.hpp - incremental UTF-8 validation of a byte stream fed in arbitrary pieces.
//
// Expat reports malformed UTF-8 as a generic "invalid token"; RFC 6120 4.9.3.22 wants
// <unsupported-encoding/> for it, so the stream parser checks the bytes before expat sees them.
// Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629), and NUL: never allowed in
// XML, and among the first bytes of a document expat takes it for UTF-16 and switches encodings, whatever
// encoding it was told.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace parley::xml {

class Utf8Validator {
 public:
  // Returns how many leading bytes of `bytes` are valid so far (a sequence cut at the end of `bytes`
  // counts as valid: its rest may come in the next call). Returns less than bytes.size() at the first
  // invalid byte; the state then stays as before that byte.
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
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b == 0xE0) {
        need_ = 2;
        lo_ = 0xA0;  // no overlong 3-byte forms
      } else if (b == 0xED) {
        need_ = 2;
        hi_ = 0x9F;  // no surrogates
      } else if (b >= 0xE1 && b <= 0xEF) {
        need_ = 2;
      } else if (b == 0xF0) {
        need_ = 3;
        lo_ = 0x90;  // no overlong 4-byte forms
      } else if (b >= 0xF1 && b <= 0xF3) {
        need_ = 3;
      } else if (b == 0xF4) {
        need_ = 3;
        hi_ = 0x8F;  // nothing above U+10FFFF
      } else {
        return i;
      }
    }
    return bytes.size();
  }

  // True between characters (no sequence cut in the middle).
  bool at_boundary() const { return need_ == 0; }
  void reset() { need_ = 0; }

 private:
  uint8_t need_ = 0;  // continuation bytes still expected
  uint8_t lo_ = 0x80;  // range of the next continuation byte
  uint8_t hi_ = 0xBF;
};

}  // namespace parley::xml
