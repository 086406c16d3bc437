// tools/parley-bench/report.hpp - the results of one run: a table for people, one JSON line for scripts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

namespace parley::bench {

class Report {
 public:
  using Value = std::variant<std::string, int64_t, double, bool>;

  // `label` is the table's wording; the key is the JSON name. Doubles print with `decimals`.
  void add(std::string key, std::string label, Value value, int decimals = 2);
  void print_table(std::FILE* out) const;
  std::string json() const;  // {"key":value,...} on one line, in insertion order

 private:
  struct Row {
    std::string key, label;
    Value value;
    int decimals;
  };
  std::vector<Row> rows_;
};

}  // namespace parley::bench
