// core/config/yaml_reader.hpp - typed, strict reads of yaml-cpp nodes (internal to parley_config).
//
// yaml-cpp already reports its errors by throwing, so the schema code does the same with
// Invalid; load_config_string() catches both and turns them into a ConfigError value.
// Neither exception leaves the library.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace parley::config::detail {

struct Invalid {
  int line = 0;    // 1-based, 0 = unknown
  int column = 0;  // 1-based, 0 = unknown
  std::string reason;
};

// 1-based position of a node; yaml-cpp marks are 0-based and -1 when absent.
int line_of(const YAML::Node& node);
int column_of(const YAML::Node& node);

[[noreturn]] void fail(const YAML::Node& at, std::string reason);

// A key/value pair of a mapping. Errors about a value point at the value, except when the
// value is null (`key:` alone): yaml-cpp then marks the following line, so the key is used.
struct Field {
  YAML::Node key;
  YAML::Node value;
  std::string path;  // "limits.max_xml_depth", "listen[1].port": for messages

  const YAML::Node& where() const;
  [[noreturn]] void fail(std::string reason) const;
};

// Reads one mapping: rejects non-scalar and duplicate keys up front, hands out fields by
// name, and finish() rejects the first key nobody asked for (with a "did you mean").
class MapReader {
 public:
  // `node` must be a map (or null, read as empty when allow_null); `what` names it in
  // messages ("listen entry", "limits"); `path` prefixes field paths ("" at top level).
  MapReader(const YAML::Node& node, std::string what, std::string path, bool allow_null = false);

  std::optional<Field> take(std::string_view key);
  Field require(std::string_view key);
  void finish() const;

  // Every key in file order, each marked as taken (for open-ended maps such as `modules`).
  std::vector<Field> take_all();

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
    std::string name;
    bool taken = false;
  };
  YAML::Node node_;
  std::string what_;
  std::string path_;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;  // every name asked for, for suggestions
};

std::string read_string(const Field& f, bool allow_empty = false);
uint64_t read_uint(const Field& f, uint64_t min, uint64_t max);
bool read_bool(const Field& f);
std::vector<std::string> read_string_list(const Field& f);

// Guards what is handed on to modules as raw YAML: refuses alias cycles, alias bombs and
// absurd nesting so that a module walking its options cannot loop or explode.
void check_bounded(const YAML::Node& node, const std::string& path, int max_depth, size_t max_nodes);

}  // namespace parley::config::detail
