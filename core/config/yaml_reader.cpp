#include "core/config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>

namespace parley::config::detail {

namespace {

std::string type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined value";
  }
}

// Quoted scalars carry the non-specific tag "!"; a quoted "5222" is a string, not a number,
// and accepting it would make `"false"` a string that silently reads as true somewhere else.
bool is_quoted(const YAML::Node& n) { return n.Tag() == "!"; }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string printable(const std::string& s) {
  // Keys come from the file; keep messages on one line and short.
  std::string out;
  for (char c : s.substr(0, 64)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

int line_of(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.line >= 0 ? m.line + 1 : 0;
}

int column_of(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.line >= 0 && m.column >= 0 ? m.column + 1 : 0;
}

void fail(const YAML::Node& at, std::string reason) {
  throw Invalid{line_of(at), column_of(at), std::move(reason)};
}

const YAML::Node& Field::where() const { return value.IsNull() ? key : value; }

void Field::fail(std::string reason) const { detail::fail(where(), path + ": " + std::move(reason)); }

MapReader::MapReader(const YAML::Node& node, std::string what, std::string path, bool allow_null)
    : node_(node), what_(std::move(what)), path_(std::move(path)) {
  if (node.IsNull() && allow_null) return;
  if (!node.IsMap()) detail::fail(node, what_ + ": expected a mapping, got " + type_name(node));
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) detail::fail(key, "a key in " + what_ + " must be a plain name, got " + type_name(key));
    const std::string& name = key.Scalar();
    for (const Entry& e : entries_) {
      if (e.name == name) {
        detail::fail(key, "duplicate key '" + printable(name) + "' in " + what_ + " (first at line " +
                              std::to_string(line_of(e.key)) + ")");
      }
    }
    entries_.push_back(Entry{key, it->second, name});
  }
}

std::optional<Field> MapReader::take(std::string_view key) {
  known_.emplace_back(key);
  for (Entry& e : entries_) {
    if (e.name == key) {
      e.taken = true;
      return Field{e.key, e.value, path_.empty() ? e.name : path_ + "." + e.name};
    }
  }
  return std::nullopt;
}

Field MapReader::require(std::string_view key) {
  if (auto f = take(key)) return *f;
  detail::fail(node_, "missing required key '" + std::string(key) + "' in " + what_);
}

void MapReader::finish() const {
  for (const Entry& e : entries_) {
    if (e.taken) continue;
    std::string reason = "unknown key '" + printable(e.name) + "' in " + what_;
    const std::string* best = nullptr;
    size_t best_distance = 3;  // suggest only close misspellings
    for (const std::string& k : known_) {
      size_t d = edit_distance(e.name, k);
      if (d < best_distance) best_distance = d, best = &k;
    }
    if (best) reason += " (did you mean '" + *best + "'?)";
    detail::fail(e.key, reason);
  }
}

std::vector<Field> MapReader::take_all() {
  std::vector<Field> out;
  for (Entry& e : entries_) {
    e.taken = true;
    out.push_back(Field{e.key, e.value, path_.empty() ? e.name : path_ + "." + e.name});
  }
  return out;
}

std::string read_string(const Field& f, bool allow_empty) {
  if (!f.value.IsScalar()) f.fail("expected a string, got " + type_name(f.value));
  const std::string& s = f.value.Scalar();
  if (s.empty() && !allow_empty) f.fail("must not be empty");
  return s;
}

uint64_t read_uint(const Field& f, uint64_t min, uint64_t max) {
  if (!f.value.IsScalar()) f.fail("expected an integer, got " + type_name(f.value));
  const std::string& s = f.value.Scalar();
  if (is_quoted(f.value)) f.fail("expected an integer, got the quoted string \"" + printable(s) + "\"");
  const std::string range = "must be between " + std::to_string(min) + " and " + std::to_string(max);
  if (!s.empty() && s[0] == '-' && s.size() > 1 &&
      std::all_of(s.begin() + 1, s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    f.fail(range + ", got " + s);
  }
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    f.fail("expected an integer, got " + type_name(f.value));
  }
  uint64_t v = 0;
  for (char c : s) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) f.fail(range + ", got " + printable(s));
    v = v * 10 + digit;
  }
  if (v < min || v > max) f.fail(range + ", got " + s);
  return v;
}

bool read_bool(const Field& f) {
  if (!f.value.IsScalar() || is_quoted(f.value)) {
    f.fail("expected true or false, got " + (is_quoted(f.value) ? "a quoted string" : type_name(f.value)));
  }
  std::string s = f.value.Scalar();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  f.fail("expected true or false, got " + type_name(f.value));
}

std::vector<std::string> read_string_list(const Field& f) {
  if (!f.value.IsSequence()) f.fail("expected a list, got " + type_name(f.value));
  std::vector<std::string> out;
  size_t i = 0;
  for (const YAML::Node& item : f.value) {
    Field element{f.key, item, f.path + "[" + std::to_string(i++) + "]"};
    if (item.IsNull()) detail::fail(f.value, element.path + ": expected a string, got nothing");
    out.push_back(read_string(element));
  }
  return out;
}

namespace {

void walk(const YAML::Node& node, const std::string& path, int depth, int max_depth, size_t& budget) {
  if (budget == 0) fail(node, path + ": too many values (alias cycle or alias bomb?)");
  --budget;
  if (depth > max_depth) fail(node, path + ": nested deeper than " + std::to_string(max_depth) + " levels");
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) walk(item, path, depth + 1, max_depth, budget);
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      walk(it->first, path, depth + 1, max_depth, budget);
      walk(it->second, path, depth + 1, max_depth, budget);
    }
  }
}

}  // namespace

void check_bounded(const YAML::Node& node, const std::string& path, int max_depth, size_t max_nodes) {
  size_t budget = max_nodes;
  walk(node, path, 0, max_depth, budget);
}

}  // namespace parley::config::detail
