#include "core/server/server_context.hpp"

#include "core/net/http_metrics.hpp"

#include "core/c2s/c2s_stream.hpp"
#include "core/component/component_directory.hpp"
#include "core/component/component_stream.hpp"
#include "core/session/session.hpp"
#include "core/modules/pending_iqs.hpp"
#include "core/http_client/http_client.hpp"
#include "core/net/listener.hpp"

namespace parley {

LoopContext::LoopContext(unsigned index) : loop(index), pending_iqs(std::make_unique<PendingIqs>(*this)) {}
LoopContext::~LoopContext() {
  // A loop that never ran (start-up failed) still has its listeners' handles
  // open: close them and let their callbacks run while the Listeners exist.
  bool pending = false;
  for (auto& listener : listeners) {
    if (!listener->closed()) {
      listener->close();
      pending = true;
    }
  }
  if (pending) uv_run(loop.uv(), UV_RUN_NOWAIT);
}

namespace {
thread_local LoopContext* current_loop = nullptr;

void on_throttle_timer(uv_timer_t* timer) {
  auto* lc = static_cast<LoopContext*>(timer->data);
  uint64_t now = uv_now(lc->loop.uv());
  std::vector<SessionId> due;
  auto& list = lc->throttled;
  for (size_t i = 0; i < list.size();) {
    if (list[i].first <= now) {
      due.push_back(list[i].second);
      list[i] = list.back();
      list.pop_back();
    } else {
      ++i;
    }
  }
  for (SessionId id : due)
    if (Session* session = lc->find(id))
      session->end_throttle();
    else if (lc->components)
      lc->components->end_throttle(id);  // an external component's connection
  if (list.empty()) uv_timer_stop(timer);
}
}  // namespace

void LoopContext::throttle(SessionId id, uint64_t resume_at_ms) {
  if (!throttle_timer_ready) {
    uv_timer_init(loop.uv(), &throttle_timer);
    throttle_timer.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&throttle_timer));
    throttle_timer_ready = true;
  }
  throttled.emplace_back(resume_at_ms, id);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&throttle_timer)))
    uv_timer_start(&throttle_timer, &on_throttle_timer, 50, 50);
}
LoopContext* LoopContext::current() { return current_loop; }

void LoopContext::watch_parser(SessionId id, unsigned period_s) {
  if (!parser_sweep.ready()) {
    parser_sweep.init(loop.uv(), uint64_t{period_s} * 1000, [](void* context, SessionId watched) {
      C2sStream* stream = static_cast<LoopContext*>(context)->stream_of(watched);
      return stream != nullptr && stream->sweep_parser();
    }, this);
  }
  parser_sweep.watch(id);
}

C2sStream* LoopContext::stream_of(SessionId id) {
  Session* session = find(id);
  return session ? session->stream() : nullptr;
}

Connection* LoopContext::connection_of(SessionId id) {
  C2sStream* stream = stream_of(id);
  return stream ? &stream->connection() : nullptr;
}
void LoopContext::make_current() { current_loop = this; }

ServerContext::ServerContext(const config::Config& cfg) : config(cfg) {
  xml_limits.max_stanza_bytes = cfg.limits.max_stanza_bytes;
  xml_limits.max_depth = cfg.limits.max_xml_depth;
  xml_limits.max_attributes = cfg.limits.max_xml_attributes;
  xml_limits.max_attribute_bytes = cfg.limits.max_attribute_bytes;
  xml_limits.max_stanza_elements = cfg.limits.max_xml_elements;
  for (const auto& host : cfg.hosts) hosts.insert(host);
}

std::shared_ptr<tls::ContextStore> ServerContext::tls_store() const {
  std::lock_guard lock(tls_mutex_);
  return tls_store_;
}

void ServerContext::set_tls_store(std::shared_ptr<tls::ContextStore> store) {
  std::lock_guard lock(tls_mutex_);
  tls_store_ = std::move(store);
}

bool ConnectionCounter::try_add(const std::string& ip, size_t limit) {
  std::lock_guard lock(mutex_);
  size_t& count = counts_[ip];
  if (limit != 0 && count >= limit) {
    if (count == 0) counts_.erase(ip);
    return false;
  }
  ++count;
  return true;
}

void ConnectionCounter::remove(const std::string& ip) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(ip);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

unsigned AuthFailureTracker::record(const std::string& ip, uint64_t now_ms, uint64_t window_ms) {
  std::lock_guard lock(mutex_);
  prune(now_ms, window_ms);
  Entry& e = entries_[ip];
  // A fixed window per address that starts at its first failure: simple, and
  // a guesser is held back for at most one window after it stops.
  if (e.failures == 0 || now_ms - e.window_start_ms >= window_ms) {
    e.window_start_ms = now_ms;
    e.failures = 0;
  }
  return ++e.failures;
}

unsigned AuthFailureTracker::count(const std::string& ip, uint64_t now_ms, uint64_t window_ms) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ip);
  if (it == entries_.end()) return 0;
  if (now_ms - it->second.window_start_ms >= window_ms) {
    entries_.erase(it);
    return 0;
  }
  return it->second.failures;
}

void AuthFailureTracker::prune(uint64_t now_ms, uint64_t window_ms) {
  // Bounded memory under a spray of addresses: expired entries go at most
  // once per window.
  if (now_ms - pruned_at_ms_ < window_ms) return;
  pruned_at_ms_ = now_ms;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now_ms - it->second.window_start_ms >= window_ms) it = entries_.erase(it);
    else ++it;
  }
}

bool KnownAccounts::contains(const std::string& bare) const {
  std::lock_guard lock(mutex_);
  return accounts_.count(bare) != 0;
}

void KnownAccounts::add(const std::string& bare) {
  std::lock_guard lock(mutex_);
  if (accounts_.size() >= kMaxEntries) accounts_.clear();
  accounts_.insert(bare);
}

void KnownAccounts::remove(const std::string& bare) {
  std::lock_guard lock(mutex_);
  accounts_.erase(bare);
}

}  // namespace parley
