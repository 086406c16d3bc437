// /metrics (issue 13): the server's figures in the Prometheus text format
// (version 0.0.4), served by the HTTP listeners to the addresses of the
// config's `metrics_allow`, and the per-loop sampler behind its decayed
// averages: each worker loop samples its queue lengths once a second with a
// timer of its own and keeps 1, 10 and 100 s exponentially decayed averages
// in atomics only it writes (no lock; /metrics reads them from any loop).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley {

class ServerContext;
struct LoopContext;
struct ModuleTables;
struct ComponentEntry;

namespace config {
struct Config;
}

class LoopGauges {
 public:
  enum Gauge {
    inbox,          // tasks posted to the loop, not run yet
    route_in,       // stanzas routed to this loop by the others, not handled yet
    write_backlog,  // bytes in this loop's connections' write backlogs
    storage_read,   // the storage pool's queues and the archive store's (sampled by loop 0 only)
    storage_write,
    archive,
    keyval,         // the keyval and map stores' queue (their thread's)
    accounts,       // the account store's queue
    kGauges
  };
  static constexpr int kWindows = 3;
  static constexpr double kWindowSeconds[kWindows] = {1, 10, 100};
  static const char* name(Gauge g);
  // One step of an exponentially decayed average over `window` seconds, `dt`
  // seconds after the previous one.
  static double decayed(double average, double value, double dt, double window);

  // On the main thread before the loop's thread starts: the timer is the
  // loop's, closed with its other handles when it stops.
  void start(ServerContext& ctx, LoopContext& loop);
  double average(Gauge g, int window) const { return avg_[g][window].load(std::memory_order_relaxed); }
  int64_t last(Gauge g) const { return last_[g].load(std::memory_order_relaxed); }
  bool sampled(Gauge g) const;  // the global queues are sampled by loop 0 only
  // The external components' queues (configured ones: fixed at start), sampled by loop 0.
  size_t components() const { return component_count_; }
  const ComponentEntry& component(size_t i) const { return *components_[i].entry; }
  double component_average(size_t i, int window) const {
    return components_[i].avg[window].load(std::memory_order_relaxed);
  }

 private:
  static void on_timer(uv_timer_t* timer);
  void sample();

  uv_timer_t timer_{};
  ServerContext* ctx_ = nullptr;
  LoopContext* loop_ = nullptr;
  uint64_t last_ms_ = 0;
  std::atomic<double> avg_[kGauges][kWindows] = {};
  std::atomic<int64_t> last_[kGauges] = {};
  struct ComponentAverages {
    const ComponentEntry* entry = nullptr;
    std::atomic<double> avg[kWindows] = {};
  };
  std::unique_ptr<ComponentAverages[]> components_;
  size_t component_count_ = 0;
};

// Whether `ip` may read /metrics.
bool metrics_allowed(const config::Config& config, std::string_view ip);
// The whole text; `tables` is the calling loop's module snapshot.
std::string metrics_text(const ServerContext& ctx, const ModuleTables& tables);

}  // namespace parley
