#include "latency.hpp"

#include <algorithm>
#include <cmath>

namespace parley::bench {

void Latencies::merge(const Latencies& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  sorted_ = false;
}

void Latencies::sort() {
  if (!sorted_) std::sort(samples_.begin(), samples_.end());
  sorted_ = true;
}

double Latencies::percentile_ms(double p) {
  if (samples_.empty()) return 0;
  sort();
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_.size())));
  rank = std::clamp<size_t>(rank, 1, samples_.size());
  return static_cast<double>(samples_[rank - 1]) / 1e6;
}

double Latencies::max_ms() {
  if (samples_.empty()) return 0;
  sort();
  return static_cast<double>(samples_.back()) / 1e6;
}

double Latencies::mean_ms() const {
  if (samples_.empty()) return 0;
  long double sum = 0;
  for (uint64_t s : samples_) sum += s;
  return static_cast<double>(sum / samples_.size() / 1e6);
}

}  // namespace parley::bench
