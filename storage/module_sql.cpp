#include "storage/module_sql.hpp"

#include <array>
#include <cctype>

namespace parley::storage::module_sql {

namespace {

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

std::string first_keyword(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    if (space(sql[i])) {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (sql.substr(i, 2) == "/*") {
      // PostgreSQL's block comments nest.
      int depth = 0;
      while (i < sql.size()) {
        if (sql.substr(i, 2) == "/*") {
          ++depth;
          i += 2;
        } else if (sql.substr(i, 2) == "*/") {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
      if (depth != 0) return {};
    } else {
      break;
    }
  }
  std::string word;
  while (i < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i])) || sql[i] == '_'))
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++]))));
  return word;
}

bool is_runtime_statement(std::string_view sql) {
  static constexpr std::array<std::string_view, 6> kAllowed = {"select", "insert", "update", "delete", "with", "values"};
  const std::string word = first_keyword(sql);
  for (std::string_view allowed : kAllowed)
    if (word == allowed) return true;
  return false;
}

namespace {

// A small JSON reader: enough to walk EXPLAIN's output (objects, arrays, strings,
// numbers, true/false/null) and collect two keys of each object.
class PlanReader {
 public:
  explicit PlanReader(std::string_view text) : s_(text) {}

  Result<std::vector<std::pair<std::string, std::string>>, std::string> run() {
    if (!value()) return unexpected(error_);
    skip_space();
    if (i_ != s_.size()) return unexpected(std::string("trailing text after the plan"));
    return std::move(out_);
  }

 private:
  bool fail(std::string why) {
    error_ = "malformed plan at byte " + std::to_string(i_) + ": " + why;
    return false;
  }
  void skip_space() {
    while (i_ < s_.size() && space(s_[i_])) ++i_;
  }
  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return fail("a string expected");
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return fail("an unfinished escape");
      char e = s_[i_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u':
          // Names compared here are identifiers: keep the escape as written.
          if (i_ + 4 > s_.size()) return fail("an unfinished \\u escape");
          out += "\\u";
          out.append(s_.substr(i_, 4));
          i_ += 4;
          break;
        default: out.push_back(e);  // " \ /
      }
    }
    if (i_ >= s_.size()) return fail("an unfinished string");
    ++i_;
    return true;
  }
  bool object() {
    ++i_;  // {
    std::string relation, schema;
    bool has_relation = false;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      skip_space();
      std::string key;
      if (!string(key)) return false;
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("':' expected");
      ++i_;
      skip_space();
      if ((key == "Relation Name" || key == "Schema") && i_ < s_.size() && s_[i_] == '"') {
        std::string v;
        if (!string(v)) return false;
        if (key == "Relation Name") {
          relation = std::move(v);
          has_relation = true;
        } else {
          schema = std::move(v);
        }
      } else if (!value()) {
        return false;
      }
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        break;
      }
      return fail("',' or '}' expected");
    }
    if (has_relation) out_.emplace_back(std::move(schema), std::move(relation));
    return true;
  }
  bool array() {
    ++i_;  // [
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      if (!value()) return false;
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return true;
      }
      return fail("',' or ']' expected");
    }
  }
  bool value() {
    if (++depth_ > 200) return fail("nested too deep");
    skip_space();
    bool ok;
    if (i_ >= s_.size()) {
      ok = fail("a value expected");
    } else if (s_[i_] == '{') {
      ok = object();
    } else if (s_[i_] == '[') {
      ok = array();
    } else if (s_[i_] == '"') {
      std::string ignored;
      ok = string(ignored);
    } else {
      // A number or a literal: its characters.
      size_t start = i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '+' ||
                                s_[i_] == '.'))
        ++i_;
      ok = i_ > start || fail("a value expected");
    }
    --depth_;
    return ok;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
  std::string error_;
  std::vector<std::pair<std::string, std::string>> out_;
};

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>, std::string> plan_relations(std::string_view json) {
  return PlanReader(json).run();
}

std::string quoted_schema(std::string_view module) {
  std::string out = "\"";
  for (char c : module) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace parley::storage::module_sql
