// core/server/log_format.hpp - the operator log's two shapes (issue 17): text
// (spdlog's pattern) and `log_format: json`, one JSON object per line with the
// same fields. Operator events are written once, as text of the form
// "event=NAME key=value key=\"value with spaces\"": greppable as they are, and
// split into JSON members by the json formatter.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley {

// The key=value pairs of a log message ("event=auth_failure ip=1.2.3.4
// detail=\"a b\""): keys are [a-z0-9_]+, a value runs to the next space or is
// double-quoted (\" and \\ escaped inside). Words that are not pairs are skipped.
std::vector<std::pair<std::string, std::string>> log_fields(std::string_view message);

// A value for a key=value log field: as it is when it has no space, quote or
// control character, else double-quoted with \" and \\ escaped (control
// characters become spaces: one event, one line).
inline std::string log_value(std::string_view value) {
  bool plain = !value.empty();
  for (unsigned char c : value)
    if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f) plain = false;
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < ' ' || c == 0x7f) ? ' ' : c;
  }
  return out + "\"";
}

// One JSON object for a log line: {"time":..., "level":..., "msg":...} and,
// for an operator event, its fields as string members (a field does not
// replace time, level or msg).
std::string json_log_line(std::string_view time, std::string_view level, std::string_view message);

// Makes the default logger write json_log_line()s.
void use_json_log_format();

}  // namespace parley
