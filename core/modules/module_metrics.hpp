// A module instance's typed metrics (ABI 1.2 metric_register/metric_record):
// counters, gauges and histograms whose values are kept per worker loop and
// summed when read, so recording one on the stanza path is a plain store to
// memory only that loop writes (no shared atomic, no lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

class ModuleMetrics {
 public:
  // Upper bounds of the histogram buckets: 1, 2, 5, 10, 20, 50, ... 5e9, then +inf.
  static const std::vector<int64_t>& histogram_bounds();

  // Declares a metric (kind: parley_metric_kind); its id (> 0), or 0 if
  // refused (bad kind or name, a duplicate, or after the first record).
  uint32_t declare(std::string_view name, uint32_t kind, std::string_view help);
  // One shard per worker loop and one for writers off the loops; the
  // declarations are fixed from here on. Runs at the first record at the latest.
  void freeze(size_t loops);
  // Records `value` for metric `id` (counter: adds, gauge: adds, may be
  // negative; histogram: one observation). `loop` < 0: off the worker loops.
  void record(uint32_t id, int64_t value, int loop);
  // "PREFIX.NAME: VALUE" lines, summed over the shards (parleyctl status).
  std::string text(std::string_view prefix) const;
  // The summed value of a counter or gauge, the observation count of a histogram.
  int64_t total(uint32_t id) const;
  // Every metric summed over the shards (/metrics).
  struct Sample {
    std::string name;
    uint32_t kind;
    std::string help;
    int64_t value = 0;             // counter, gauge
    std::vector<int64_t> buckets;  // histogram: per bucket (not cumulative), +inf last
    int64_t sum = 0;               // histogram
  };
  std::vector<Sample> snapshot() const;

 private:
  struct Decl {
    std::string name;
    uint32_t kind;
    std::string help;
    size_t offset;  // first cell of this metric in a shard
  };
  // A shard's cells in whole cache lines of their own: loops never write to
  // a line another loop writes to.
  struct alignas(64) Line {
    std::atomic<int64_t> cell[8];
  };
  struct Shard {
    explicit Shard(size_t cells) : lines(new Line[(cells + 7) / 8]) {
      for (size_t i = 0; i < (cells + 7) / 8; ++i)
        for (auto& c : lines[i].cell) c.store(0, std::memory_order_relaxed);
    }
    std::atomic<int64_t>& at(size_t i) { return lines[i / 8].cell[i % 8]; }
    const std::atomic<int64_t>& at(size_t i) const { return lines[i / 8].cell[i % 8]; }
    std::unique_ptr<Line[]> lines;
  };
  static size_t cells_of(uint32_t kind);
  int64_t sum(size_t cell) const;

  std::vector<Decl> decls_;
  size_t cells_ = 0;
  std::atomic<bool> frozen_{false};
  std::vector<std::unique_ptr<Shard>> shards_;  // [0, loops): the loops; last: off the loops
};

}  // namespace parley
