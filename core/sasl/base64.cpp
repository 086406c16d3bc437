#include "core/sasl/base64.hpp"

#include <array>
#include <cstdint>

namespace parley::sasl {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_reverse() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}

constexpr auto kReverse = make_reverse();

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t v = byte(i) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

Result<std::string, std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return unexpected(std::string("base64 length is not a multiple of 4"));
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = text[text.size() - 2] == '=' ? 2 : 1;  // size is a multiple of 4, so >= 4 here
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t pad_here = last ? pad : 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int d;
      if (k >= 4 - pad_here) {
        d = 0;  // padding, validated by position above
      } else {
        d = kReverse[static_cast<unsigned char>(c)];
        if (d < 0) return unexpected(std::string("invalid base64 character"));
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>((v >> 16) & 0xFF));
    if (pad_here < 2) out.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (pad_here < 1) out.push_back(static_cast<char>(v & 0xFF));
    // Non-zero bits under the padding would let two texts decode to the same bytes.
    if ((pad_here == 1 && (v & 0xFF) != 0) || (pad_here == 2 && (v & 0xFFFF) != 0)) {
      return unexpected(std::string("non-zero base64 padding bits"));
    }
  }
  return out;
}

}  // namespace parley::sasl
