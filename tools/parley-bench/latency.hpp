// tools/parley-bench/latency.hpp - exact latency percentiles from every sample.
//
// A run holds at most a few million samples (8 bytes each), so keeping them all and sorting once is
// simpler and more honest than a histogram. Each worker fills its own; the main thread merges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace parley::bench {

class Latencies {
 public:
  void add(uint64_t ns) { samples_.push_back(ns); sorted_ = false; }
  void merge(const Latencies& other);
  void clear() { samples_.clear(); }
  size_t count() const { return samples_.size(); }
  // Nearest-rank percentile, p in [0, 100]; 0 when there is no sample.
  double percentile_ms(double p);
  double max_ms();
  double mean_ms() const;

 private:
  void sort();
  std::vector<uint64_t> samples_;
  bool sorted_ = true;
};

}  // namespace parley::bench
