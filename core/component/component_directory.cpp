#include "core/component/component_directory.hpp"

#include <spdlog/spdlog.h>

#include "core/component/component_stream.hpp"
#include "core/router/router.hpp"
#include "core/sasl/crypto.hpp"
#include "core/server/server_context.hpp"

namespace parley {

namespace component {

std::string handshake_digest(std::string_view stream_id, std::string_view secret) {
  std::string input(stream_id);
  input += secret;
  std::string raw = sasl::digest(sasl::Hash::sha1, input);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xf]);
  }
  return out;
}

bool handshake_matches(std::string_view given, std::string_view stream_id, std::string_view secret) {
  // XEP-0114 says lowercase; some components send uppercase hex: accepted.
  std::string lowered(given);
  for (char& c : lowered)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return sasl::equal_constant_time(lowered, handshake_digest(stream_id, secret));
}

}  // namespace component

ComponentDirectory::ComponentDirectory(const config::Config& config) {
  for (const config::Listener& listener : config.listen) {
    for (const config::ComponentHost& host : listener.component_hosts) {
      auto entry = std::make_unique<ComponentEntry>();
      entry->domain = host.domain;
      entries_.emplace(host.domain, std::move(entry));
    }
  }
}

ComponentEntry* ComponentDirectory::find(std::string_view domain) const {
  auto it = entries_.find(domain);
  return it == entries_.end() ? nullptr : it->second.get();
}

std::vector<const ComponentEntry*> ComponentDirectory::entries() const {
  std::vector<const ComponentEntry*> out;
  out.reserve(entries_.size());
  for (const auto& [domain, entry] : entries_) out.push_back(entry.get());
  return out;
}

ComponentLinks::ComponentLinks() = default;
ComponentLinks::~ComponentLinks() = default;

ComponentStream* ComponentLinks::by_log_id(SessionId id) const {
  for (const auto& [raw, owned] : streams)
    if (raw->log_id() == id) return raw;
  return nullptr;
}

void ComponentLinks::end_throttle(SessionId id) {
  if (ComponentStream* stream = by_log_id(id)) stream->end_throttle();
}

void ComponentLinks::close_all(std::string_view condition) {
  std::vector<ComponentStream*> all;
  for (const auto& [raw, owned] : streams) all.push_back(raw);
  for (ComponentStream* stream : all) stream->close_with_stream_error(condition);
}

namespace {

// A stanza for a component that is not connected: answered, never silently
// dropped (an error or an iq result is not answered, RFC 6120 §8.3.1).
void bounce_absent(ServerContext& ctx, const xml::Element& stanza, unsigned loop) {
  std::string_view type = stanza.attr("type");
  if (stanza.name() == "iq" && type != "get" && type != "set") return;
  ctx.router->bounce(stanza, "service-unavailable", loop, "The component is not connected");
}

void post_to_loop(ServerContext& ctx, ComponentEntry& entry, std::shared_ptr<Delivery> delivery, unsigned target,
                  unsigned loop, bool forwarded);

// On the loop that serves (or served) the component.
void deliver_on_loop(ServerContext& ctx, ComponentEntry& entry, std::shared_ptr<Delivery> delivery, unsigned loop,
                     bool forwarded) {
  LoopContext& here = *ctx.loops[loop];
  if (here.components) {
    auto it = here.components->serving.find(entry.domain);
    if (it != here.components->serving.end()) {
      it->second->enqueue(std::move(delivery));
      return;
    }
  }
  // Gone while the stanza travelled. Reconnected on another loop meanwhile:
  // once more, there.
  int now = entry.loop.load(std::memory_order_acquire);
  if (!forwarded && now >= 0 && static_cast<unsigned>(now) != loop && static_cast<unsigned>(now) < ctx.loops.size()) {
    post_to_loop(ctx, entry, std::move(delivery), static_cast<unsigned>(now), loop, true);
    return;
  }
  bounce_absent(ctx, delivery->stanza, loop);
}

void post_to_loop(ServerContext& ctx, ComponentEntry& entry, std::shared_ptr<Delivery> delivery, unsigned target,
                  unsigned loop, bool forwarded) {
  LoopContext& from = *ctx.loops[loop];
  LoopContext& to = *ctx.loops[target];
  // The route between the two loops and its bound, as for a session there.
  if (from.routed_to) {
    int64_t queued = from.routed_to[target].get() - to.received_from[loop].get();
    if (queued >= static_cast<int64_t>(ctx.config.limits.max_route_queue)) {
      from.metrics.stanzas_refused_route_full.add();
      ctx.router->bounce(delivery->stanza, "resource-constraint", loop, "The server is busy; try again later");
      return;
    }
    from.routed_to[target].add();
  }
  from.metrics.stanzas_routed_cross_loop.add();
  ServerContext* c = &ctx;
  ComponentEntry* e = &entry;
  to.loop.post([c, e, delivery = std::move(delivery), target, loop, forwarded]() mutable {
    deliver_on_loop(*c, *e, std::move(delivery), target, forwarded);
    LoopContext& here = *c->loops[target];
    if (here.received_from) here.received_from[loop].add();
  });
}

}  // namespace

bool route_to_component(ServerContext& ctx, xml::Element& stanza, const Jid& to, unsigned loop) {
  ComponentEntry* entry = ctx.components->find(to.domain());
  if (entry == nullptr) return false;
  int target = entry->loop.load(std::memory_order_acquire);
  if (target < 0 || static_cast<unsigned>(target) >= ctx.loops.size()) {
    bounce_absent(ctx, stanza, loop);
    return true;
  }
  auto delivery = std::make_shared<Delivery>(std::move(stanza));
  if (static_cast<unsigned>(target) == loop) {
    deliver_on_loop(ctx, *entry, std::move(delivery), loop, false);
    return true;
  }
  post_to_loop(ctx, *entry, std::move(delivery), static_cast<unsigned>(target), loop, false);
  return true;
}

}  // namespace parley
