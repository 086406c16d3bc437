// parley/sdk/line_record.hpp - a value kept on one line of a "key value" record
// (what mod_muc and mod_pubsub store a room's or a node's configuration as):
// backslash and newline escaped, so any value fits a line and comes back whole.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

inline std::string escape_line(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

inline std::string unescape_line(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      ++i;
      out += v[i] == 'n' ? '\n' : v[i];
    } else {
      out += v[i];
    }
  }
  return out;
}

}  // namespace parley
