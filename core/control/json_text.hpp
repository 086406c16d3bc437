// core/control/json_text.hpp - the little JSON parleyctl's --json output needs: strings
// escaped (RFC 8259), objects and arrays written in order. Nothing parses JSON here.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::control {

inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes as it is
        }
    }
  }
  return out + "\"";
}

// An object built member by member; values are JSON text already (json_string(), numbers,
// nested objects).
class JsonObject {
 public:
  JsonObject& raw(std::string_view key, std::string value) {
    members_.emplace_back(std::string(key), std::move(value));
    return *this;
  }
  JsonObject& str(std::string_view key, std::string_view value) { return raw(key, json_string(value)); }
  JsonObject& num(std::string_view key, int64_t value) { return raw(key, std::to_string(value)); }
  JsonObject& boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  std::string text() const {
    std::string out = "{";
    for (size_t i = 0; i < members_.size(); ++i) {
      if (i) out += ", ";
      out += json_string(members_[i].first) + ": " + members_[i].second;
    }
    return out + "}";
  }

 private:
  std::vector<std::pair<std::string, std::string>> members_;
};

inline std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  return out + "]";
}

// "key: value" lines (status, stats) as one object; a value that is a whole number
// becomes a number, anything else a string. Lines without ": " are skipped.
inline std::string json_from_key_lines(std::string_view text) {
  JsonObject obj;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 2);
    bool number = !value.empty() && value.size() < 19;
    for (size_t i = 0; i < value.size() && number; ++i)
      number = (value[i] >= '0' && value[i] <= '9') || (i == 0 && value[i] == '-' && value.size() > 1);
    if (number)
      obj.raw(key, std::string(value));
    else
      obj.str(key, value);
  }
  return obj.text();
}

// Text lines (list-users, connected-users) as a JSON array of strings.
inline std::string json_lines(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty()) items.push_back(json_string(line));
  }
  return json_array(items) + "\n";
}

// A trailing "--json" (parleyctl sends it for its --json option): removed; true if it
// was there.
inline bool take_json_flag(std::vector<std::string>& args) {
  if (args.size() > 1 && args.back() == "--json") {
    args.pop_back();
    return true;
  }
  return false;
}

}  // namespace parley::control
