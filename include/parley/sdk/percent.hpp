// parley/sdk/percent.hpp - RFC 3986 percent-decoding (%XX), for the modules that read
// URIs (mod_extdisco's service URIs, mod_http_upload's request paths). Standard
// library only: a module's self-contained logic (and its unit tests) may include it
// without the rest of the SDK.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley {

// Every %XX decoded (hex digits of either case); nullopt if a '%' is not followed by
// two hex digits. What the decoded bytes may be is the caller's to check (a NUL, a
// '/', a control character): the rules differ with where the value goes.
inline std::optional<std::string> percent_decode(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace parley
