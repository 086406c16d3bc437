#include "core/modules/module_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "parley/module.h"

namespace parley {

const std::vector<int64_t>& ModuleMetrics::histogram_bounds() {
  static const std::vector<int64_t> bounds = [] {
    std::vector<int64_t> b;
    for (int64_t decade = 1; decade <= 1'000'000'000; decade *= 10)
      for (int64_t step : {1, 2, 5}) b.push_back(step * decade);
    return b;
  }();
  return bounds;
}

size_t ModuleMetrics::cells_of(uint32_t kind) {
  // A histogram: one count per bucket (+inf last), then the sum.
  return kind == PARLEY_METRIC_HISTOGRAM ? histogram_bounds().size() + 2 : 1;
}

uint32_t ModuleMetrics::declare(std::string_view name, uint32_t kind, std::string_view help) {
  if (frozen_.load() || name.empty() || name.size() > 64) return 0;
  if (kind != PARLEY_METRIC_COUNTER && kind != PARLEY_METRIC_GAUGE && kind != PARLEY_METRIC_HISTOGRAM) return 0;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return 0;
  if (std::any_of(decls_.begin(), decls_.end(), [&](const Decl& d) { return d.name == name; })) return 0;
  decls_.push_back(Decl{std::string(name), kind, std::string(help), cells_});
  cells_ += cells_of(kind);
  return static_cast<uint32_t>(decls_.size());
}

void ModuleMetrics::freeze(size_t loops) {
  if (frozen_.load()) return;
  for (size_t i = 0; i <= loops; ++i) shards_.push_back(std::make_unique<Shard>(std::max<size_t>(cells_, 1)));
  frozen_.store(true);
}

void ModuleMetrics::record(uint32_t id, int64_t value, int loop) {
  if (id == 0 || id > decls_.size() || !frozen_.load(std::memory_order_acquire)) return;
  const Decl& d = decls_[id - 1];
  if (d.kind == PARLEY_METRIC_COUNTER && value < 0) return;
  size_t cell = d.offset;
  int64_t add = value;
  if (d.kind == PARLEY_METRIC_HISTOGRAM) {
    const auto& bounds = histogram_bounds();
    cell += static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
    add = 1;
  }
  bool own = loop >= 0 && static_cast<size_t>(loop) + 1 < shards_.size();
  Shard& shard = *shards_[own ? static_cast<size_t>(loop) : shards_.size() - 1];
  auto bump = [&](std::atomic<int64_t>& c, int64_t delta) {
    // A loop's shard has one writer: a load and a store, no read-modify-write.
    if (own) c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    else c.fetch_add(delta, std::memory_order_relaxed);
  };
  bump(shard.at(cell), add);
  if (d.kind == PARLEY_METRIC_HISTOGRAM) bump(shard.at(d.offset + histogram_bounds().size() + 1), value);
}

int64_t ModuleMetrics::sum(size_t cell) const {
  int64_t total = 0;
  for (const auto& shard : shards_) total += shard->at(cell).load(std::memory_order_relaxed);
  return total;
}

int64_t ModuleMetrics::total(uint32_t id) const {
  if (id == 0 || id > decls_.size() || !frozen_.load()) return 0;
  const Decl& d = decls_[id - 1];
  if (d.kind != PARLEY_METRIC_HISTOGRAM) return sum(d.offset);
  int64_t count = 0;
  for (size_t b = 0; b <= histogram_bounds().size(); ++b) count += sum(d.offset + b);
  return count;
}

std::vector<ModuleMetrics::Sample> ModuleMetrics::snapshot() const {
  std::vector<Sample> out;
  if (!frozen_.load()) return out;
  const auto& bounds = histogram_bounds();
  for (const Decl& d : decls_) {
    Sample s;
    s.name = d.name;
    s.kind = d.kind;
    s.help = d.help;
    if (d.kind != PARLEY_METRIC_HISTOGRAM) {
      s.value = sum(d.offset);
    } else {
      for (size_t b = 0; b <= bounds.size(); ++b) s.buckets.push_back(sum(d.offset + b));
      s.sum = sum(d.offset + bounds.size() + 1);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string ModuleMetrics::text(std::string_view prefix) const {
  std::string out;
  if (!frozen_.load()) return out;
  const auto& bounds = histogram_bounds();
  for (uint32_t id = 1; id <= decls_.size(); ++id) {
    const Decl& d = decls_[id - 1];
    if (d.kind != PARLEY_METRIC_HISTOGRAM) {
      out += fmt::format("{}.{}: {}\n", prefix, d.name, sum(d.offset));
      continue;
    }
    std::vector<int64_t> counts(bounds.size() + 1);
    int64_t count = 0;
    for (size_t b = 0; b < counts.size(); ++b) count += counts[b] = sum(d.offset + b);
    // The bucket bound under which half / 99% of the observations fall.
    auto quantile = [&](double q) -> std::string {
      if (count == 0) return "-";
      int64_t need = static_cast<int64_t>(q * static_cast<double>(count) + 0.999999);
      int64_t seen = 0;
      for (size_t b = 0; b < counts.size(); ++b) {
        seen += counts[b];
        if (seen >= need) return b < bounds.size() ? fmt::format("<={}", bounds[b]) : std::string(">5e9");
      }
      return "-";
    };
    out += fmt::format("{}.{}: count={} sum={} p50{} p99{}\n", prefix, d.name, count,
                       sum(d.offset + bounds.size() + 1), quantile(0.5), quantile(0.99));
  }
  return out;
}

}  // namespace parley
