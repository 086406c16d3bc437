#include "core/server/server_context.hpp"

#include "core/c2s/c2s_session.hpp"
#include "core/net/listener.hpp"

namespace parley {

LoopContext::LoopContext(unsigned index) : loop(index) {}
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
}
LoopContext* LoopContext::current() { return current_loop; }
void LoopContext::make_current() { current_loop = this; }

ServerContext::ServerContext(const config::Config& cfg) : config(cfg) {
  xml_limits.max_stanza_bytes = cfg.limits.max_stanza_bytes;
  xml_limits.max_depth = cfg.limits.max_xml_depth;
  xml_limits.max_attributes = cfg.limits.max_xml_attributes;
  xml_limits.max_attribute_bytes = cfg.limits.max_attribute_bytes;
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

}  // namespace parley
