// Bytes as lower-case hex, for comparing digests and keys with published vectors.
#pragma once

#include <string>
#include <string_view>

namespace parley::sasl::test {

inline std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

}  // namespace parley::sasl::test
