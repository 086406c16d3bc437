#include "core/server/log_format.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "core/control/json_text.hpp"

namespace parley {

namespace {

bool key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

// RFC 8259 escaping, as parleyctl --json writes it.
void json_string(std::string& out, std::string_view s) { out += control::json_string(s); }

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto since = msg.time.time_since_epoch();
    std::time_t seconds = static_cast<std::time_t>(duration_cast<std::chrono::seconds>(since).count());
    auto millis = duration_cast<milliseconds>(since).count() % 1000;
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char stamp[40];
    size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(millis));
    auto level = spdlog::level::to_string_view(msg.level);
    std::string line = json_log_line(stamp, std::string_view(level.data(), level.size()),
                                     std::string_view(msg.payload.data(), msg.payload.size()));
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::vector<std::pair<std::string, std::string>> log_fields(std::string_view m) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < m.size()) {
    while (i < m.size() && m[i] == ' ') ++i;
    size_t key_start = i;
    while (i < m.size() && key_char(m[i])) ++i;
    if (i == key_start || i >= m.size() || m[i] != '=') {
      // Not a pair: skip the word (a quoted part of it included).
      bool quoted = false;
      while (i < m.size() && (quoted || m[i] != ' ')) {
        if (m[i] == '"') quoted = !quoted;
        if (quoted && m[i] == '\\' && i + 1 < m.size()) ++i;
        ++i;
      }
      continue;
    }
    std::string key(m.substr(key_start, i - key_start));
    ++i;  // '='
    std::string value;
    if (i < m.size() && m[i] == '"') {
      ++i;
      while (i < m.size() && m[i] != '"') {
        if (m[i] == '\\' && i + 1 < m.size()) ++i;
        value += m[i++];
      }
      if (i < m.size()) ++i;  // the closing quote
    } else {
      while (i < m.size() && m[i] != ' ') value += m[i++];
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::string json_log_line(std::string_view time, std::string_view level, std::string_view message) {
  std::string out = "{\"time\":";
  json_string(out, time);
  out += ",\"level\":";
  json_string(out, level);
  out += ",\"msg\":";
  json_string(out, message);
  // An event: "event=..." at the start, or after a prefix (a module's lines start with its name).
  if (message.rfind("event=", 0) == 0 || message.find(" event=") != std::string_view::npos) {
    for (const auto& [key, value] : log_fields(message)) {
      if (key == "time" || key == "level" || key == "msg") continue;
      out += ',';
      json_string(out, key);
      out += ':';
      json_string(out, value);
    }
  }
  return out + "}";
}

void use_json_log_format() { spdlog::set_formatter(std::make_unique<JsonFormatter>()); }

}  // namespace parley
