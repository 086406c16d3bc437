#include "core/net/http_metrics.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "core/component/component_directory.hpp"
#include "core/config/config.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_tables.hpp"
#include "core/net/connection_backlog.hpp"
#include "core/server/server_context.hpp"
#include "storage/account_store.hpp"
#include "storage/archive_store.hpp"
#include "storage/keyval_store.hpp"
#include "storage/storage_pool.hpp"

namespace parley {

const char* LoopGauges::name(Gauge g) {
  switch (g) {
    case inbox: return "loop_inbox";
    case route_in: return "route_queue";
    case write_backlog: return "write_backlog_bytes";
    case storage_read: return "storage_read_queue";
    case storage_write: return "storage_write_queue";
    case archive: return "archive_queue";
    case keyval: return "keyval_queue";
    case accounts: return "account_queue";
    default: return "?";
  }
}

bool LoopGauges::sampled(Gauge g) const {
  return g < storage_read || (loop_ != nullptr && loop_->loop.index() == 0);
}

void LoopGauges::start(ServerContext& ctx, LoopContext& loop) {
  ctx_ = &ctx;
  loop_ = &loop;
  uv_timer_init(loop.loop.uv(), &timer_);
  timer_.data = this;
  if (loop.loop.index() == 0 && ctx.components) {
    std::vector<const ComponentEntry*> entries = ctx.components->entries();
    component_count_ = entries.size();
    components_ = std::make_unique<ComponentAverages[]>(component_count_);
    for (size_t i = 0; i < component_count_; ++i) components_[i].entry = entries[i];
  }
  uv_timer_start(&timer_, &LoopGauges::on_timer, 1000, 1000);
  // A sampling timer alone does not keep the loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void LoopGauges::on_timer(uv_timer_t* timer) { static_cast<LoopGauges*>(timer->data)->sample(); }

double LoopGauges::decayed(double average, double value, double dt, double window) {
  double alpha = 1.0 - std::exp(-dt / window);
  return average + alpha * (value - average);
}

void LoopGauges::sample() {
  uint64_t now = uv_now(loop_->loop.uv());
  double dt = last_ms_ == 0 ? 1.0 : static_cast<double>(now - last_ms_) / 1000.0;
  last_ms_ = now;
  int64_t values[kGauges] = {};
  values[inbox] = static_cast<int64_t>(loop_->loop.inbox_length());
  values[route_in] = ctx_->route_queue(loop_->loop.index());
  values[write_backlog] = static_cast<int64_t>(loop_write_backlog_bytes());
  if (loop_->loop.index() == 0) {
    if (ctx_->storage) {
      values[storage_read] = static_cast<int64_t>(ctx_->storage->read_queue_length());
      values[storage_write] = static_cast<int64_t>(ctx_->storage->write_queue_length());
    }
    if (ctx_->archive) values[archive] = static_cast<int64_t>(ctx_->archive->queue_length());
    if (ctx_->keyval) values[keyval] = static_cast<int64_t>(ctx_->keyval->queue_length());
    if (ctx_->accounts) values[accounts] = static_cast<int64_t>(ctx_->accounts->queue_length());
  }
  for (int g = 0; g < kGauges; ++g) {
    last_[g].store(values[g], std::memory_order_relaxed);
    for (int w = 0; w < kWindows; ++w) {
      // One writer (this loop): a load and a store.
      double avg = avg_[g][w].load(std::memory_order_relaxed);
      avg_[g][w].store(decayed(avg, static_cast<double>(values[g]), dt, kWindowSeconds[w]), std::memory_order_relaxed);
    }
  }
  for (size_t i = 0; i < component_count_; ++i) {
    double queued = static_cast<double>(components_[i].entry->queued.load(std::memory_order_relaxed));
    for (int w = 0; w < kWindows; ++w) {
      double avg = components_[i].avg[w].load(std::memory_order_relaxed);
      components_[i].avg[w].store(decayed(avg, queued, dt, kWindowSeconds[w]), std::memory_order_relaxed);
    }
  }
}

bool metrics_allowed(const config::Config& config, std::string_view ip) {
  unsigned char peer[16], allowed[16];
  std::string p(ip);
  int family = p.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, p.c_str(), peer) != 1) return false;
  size_t len = family == AF_INET6 ? 16 : 4;
  for (const std::string& a : config.metrics_allow) {
    int af = a.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    if (af == family && inet_pton(af, a.c_str(), allowed) == 1 && std::memcmp(peer, allowed, len) == 0) return true;
  }
  return false;
}

namespace {

// A metric family: its samples stay together, as the format requires.
struct Family {
  std::string type;
  std::string help;
  std::string samples;
};

std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string help_text(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace

std::string metrics_text(const ServerContext& ctx, const ModuleTables& tables) {
  std::map<std::string, Family> families;
  auto family = [&](const std::string& name, const char* type, std::string_view help) -> Family& {
    Family& f = families[name];
    if (f.type.empty()) {
      f.type = type;
      f.help = help_text(help);
    }
    return f;
  };
  auto sample = [](Family& f, const std::string& name, const std::string& labels, auto value) {
    f.samples += name;
    if (!labels.empty()) f.samples += "{" + labels + "}";
    f.samples += fmt::format(" {}\n", value);
  };
  auto gauge = [&](const std::string& name, std::string_view help, const std::string& labels, auto value) {
    sample(family("parley_" + name, "gauge", help), "parley_" + name, labels, value);
  };
  auto counter = [&](const std::string& name, std::string_view help, int64_t value) {
    // Format 0.0.4: the TYPE line names the sample, _total included.
    sample(family("parley_" + name + "_total", "counter", help), "parley_" + name + "_total", "", value);
  };

  gauge("sessions", "bound sessions (detached ones included)", "", ctx.sessions.size());
  int64_t open = ctx.total(&LoopMetrics::connections_open);
  int64_t http = ctx.total(&LoopMetrics::connections_http);
  int64_t ws = ctx.total(&LoopMetrics::connections_websocket);
  int64_t bosh = ctx.total(&LoopMetrics::connections_bosh);
  gauge("connections", "open connections by transport", "transport=\"tcp\"", open - http - ws - bosh);
  gauge("connections", "open connections by transport", "transport=\"websocket\"", ws);
  gauge("connections", "open connections by transport", "transport=\"bosh\"", bosh);
  gauge("connections", "open connections by transport", "transport=\"http\"", http);
  counter("connections_accepted", "connections accepted", ctx.total(&LoopMetrics::connections_accepted));
  counter("stanzas_in", "stanzas taken in from clients", ctx.total(&LoopMetrics::stanzas_in));
  counter("stanzas_out", "routed stanzas handed to a client's connection", ctx.total(&LoopMetrics::stanzas_out));
  counter("stanzas_cross_loop", "stanzas routed to another worker loop",
          ctx.total(&LoopMetrics::stanzas_routed_cross_loop));
  counter("stanzas_refused_route_full", "stanzas refused with resource-constraint (limits.max_route_queue)",
          ctx.total(&LoopMetrics::stanzas_refused_route_full));
  counter("tls_handshakes", "TLS handshakes completed", ctx.total(&LoopMetrics::tls_handshakes));
  counter("tls_failures", "TLS handshakes that failed", ctx.total(&LoopMetrics::tls_failures));
  counter("auth_failures", "failed SASL authentications", ctx.total(&LoopMetrics::auth_failures));
  counter("stream_errors", "streams ended with a stream error", ctx.total(&LoopMetrics::stream_errors));

  static const char* window_label[LoopGauges::kWindows] = {"1s", "10s", "100s"};
  for (const auto& lc : ctx.loops) {
    if (!lc->gauges) continue;
    std::string loop_label = fmt::format("loop=\"{}\"", lc->loop.index());
    for (int g = 0; g < LoopGauges::kGauges; ++g) {
      auto which = static_cast<LoopGauges::Gauge>(g);
      if (!lc->gauges->sampled(which)) continue;
      std::string labels = which >= LoopGauges::storage_read ? "" : loop_label;
      std::string name = LoopGauges::name(which);
      int64_t now = 0;
      switch (which) {
        case LoopGauges::inbox: now = static_cast<int64_t>(lc->loop.inbox_length()); break;
        case LoopGauges::route_in: now = ctx.route_queue(lc->loop.index()); break;
        case LoopGauges::storage_read: now = ctx.storage ? static_cast<int64_t>(ctx.storage->read_queue_length()) : 0; break;
        case LoopGauges::storage_write: now = ctx.storage ? static_cast<int64_t>(ctx.storage->write_queue_length()) : 0; break;
        case LoopGauges::archive: now = ctx.archive ? static_cast<int64_t>(ctx.archive->queue_length()) : 0; break;
        case LoopGauges::keyval: now = ctx.keyval ? static_cast<int64_t>(ctx.keyval->queue_length()) : 0; break;
        case LoopGauges::accounts: now = ctx.accounts ? static_cast<int64_t>(ctx.accounts->queue_length()) : 0; break;
        default: now = lc->gauges->last(which); break;  // the backlog is the loop's own: its last sample
      }
      gauge(name, "queue length now", labels, now);
      for (int w = 0; w < LoopGauges::kWindows; ++w) {
        std::string l = labels.empty() ? "" : labels + ",";
        gauge(name + "_avg", "queue length, exponentially decayed average over the window",
              l + fmt::format("window=\"{}\"", window_label[w]), fmt::format("{:.3f}", lc->gauges->average(which, w)));
      }
    }
    // Each external component's route queue (stanzas waiting for its stream).
    for (size_t i = 0; i < lc->gauges->components(); ++i) {
      const ComponentEntry& c = lc->gauges->component(i);
      std::string labels = fmt::format("component=\"{}\"", label_value(c.domain));
      gauge("component_queue", "stanzas waiting in an external component's queue", labels,
            c.queued.load(std::memory_order_relaxed));
      for (int w = 0; w < LoopGauges::kWindows; ++w)
        gauge("component_queue_avg", "queue length, exponentially decayed average over the window",
              labels + fmt::format(",window=\"{}\"", window_label[w]),
              fmt::format("{:.3f}", lc->gauges->component_average(i, w)));
    }
  }

  // issue 14: each external component's route (XEP-0114), as parleyctl status shows it.
  if (ctx.components) {
    for (const ComponentEntry* c : ctx.components->entries()) {
      std::string label = fmt::format("component=\"{}\"", label_value(c->domain));
      gauge("component_connected", "whether the external component is connected (1) or not (0)", label,
            c->loop.load(std::memory_order_relaxed) >= 0 ? 1 : 0);
      gauge("component_queue", "stanzas waiting in the external component's queue", label,
            c->queued.load(std::memory_order_relaxed));
      sample(family("parley_component_refused_queue_full_total", "counter",
                    "stanzas for the external component answered resource-constraint (its queue was full)"),
             "parley_component_refused_queue_full_total", label, c->refused_full.load(std::memory_order_relaxed));
    }
  }

  // Every module's counters and typed metrics, labelled with its host.
  for (parley_module* m : tables.instances) {
    std::string module = m->library->name;
    std::string host = fmt::format("host=\"{}\"", label_value(m->host));
    for (const auto& [name, value] : m->counters->totals()) {
      std::string metric = "parley_" + module + "_" + name;
      bool ok = true;
      for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
      if (!ok) continue;
      sample(family(metric, "untyped", "module counter"), metric, host, value);
    }
    for (const ModuleMetrics::Sample& s : m->metrics.snapshot()) {
      std::string metric = "parley_" + module + "_" + s.name;
      if (s.kind == PARLEY_METRIC_COUNTER) {
        sample(family(metric + "_total", "counter", s.help), metric + "_total", host, s.value);
      } else if (s.kind == PARLEY_METRIC_GAUGE) {
        sample(family(metric, "gauge", s.help), metric, host, s.value);
      } else {
        Family& f = family(metric, "histogram", s.help);
        const auto& bounds = ModuleMetrics::histogram_bounds();
        int64_t cumulative = 0;
        for (size_t b = 0; b < s.buckets.size(); ++b) {
          cumulative += s.buckets[b];
          std::string le = b < bounds.size() ? std::to_string(bounds[b]) : "+Inf";
          sample(f, metric + "_bucket", host + ",le=\"" + le + "\"", cumulative);
        }
        sample(f, metric + "_sum", host, s.sum);
        sample(f, metric + "_count", host, cumulative);
      }
    }
  }

  std::string out;
  for (const auto& [name, f] : families) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    out += f.samples;
  }
  return out;
}

}  // namespace parley
