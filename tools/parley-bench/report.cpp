#include "report.hpp"

#include <cmath>

namespace parley::bench {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_double(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

void Report::add(std::string key, std::string label, Value value, int decimals) {
  rows_.push_back(Row{std::move(key), std::move(label), std::move(value), decimals});
}

void Report::print_table(std::FILE* out) const {
  size_t width = 0;
  for (const auto& row : rows_) width = std::max(width, row.label.size());
  for (const auto& row : rows_) {
    std::string text;
    if (auto* s = std::get_if<std::string>(&row.value)) text = *s;
    else if (auto* i = std::get_if<int64_t>(&row.value)) text = std::to_string(*i);
    else if (auto* d = std::get_if<double>(&row.value)) text = format_double(*d, row.decimals);
    else text = std::get<bool>(row.value) ? "yes" : "no";
    std::fprintf(out, "  %-*s  %s\n", static_cast<int>(width), row.label.c_str(), text.c_str());
  }
}

std::string Report::json() const {
  std::string out = "{";
  bool first = true;
  for (const auto& row : rows_) {
    if (!first) out += ",";
    first = false;
    out += json_string(row.key) + ":";
    if (auto* s = std::get_if<std::string>(&row.value)) out += json_string(*s);
    else if (auto* i = std::get_if<int64_t>(&row.value)) out += std::to_string(*i);
    else if (auto* d = std::get_if<double>(&row.value)) out += format_double(*d, std::max(row.decimals, 3));
    else out += std::get<bool>(row.value) ? "true" : "false";
  }
  return out + "}";
}

}  // namespace parley::bench
