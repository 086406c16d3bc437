// A stanza to many full JIDs with only 'to' differing (a room's broadcast,
// module.h route_shared): serialized once, the recipients' bytes the shared
// ones with their 'to' spliced in after the element's name, the deliveries
// to another loop posted once per loop. Issues 15 and 18.
#include <spdlog/spdlog.h>

#include <optional>

#include "core/modules/element_mutations.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

void append_to_attr(std::string& out, std::string_view to) {
  out += " to='";
  xml::escape_attr_to(out, to);
  out += '\'';
}

}  // namespace

// What the delivering loop lends to the session it hands a shared delivery
// to: one element per loop and broadcast, its 'to' set for each recipient in
// turn (made only if a hook or filter asks for the element).
struct SharedView {
  const SharedStanza* shared;
  std::optional<xml::Element> element;
  xml::Element& for_to(const std::string& to) {
    if (!element) element.emplace(shared->stanza);
    element->set_attr("to", to);
    return *element;
  }
};

std::shared_ptr<const SharedStanza> SharedStanza::make(xml::Element& stanza) {
  auto shared = std::make_shared<SharedStanza>();
  stanza.remove_attr("to");
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  std::string bytes = xml::serialize(stanza, ctx);
  // The start tag is "<name" then attributes, '>' or "/>": 'to' goes right
  // after the name. Anything else (a prefixed name) is not spliced.
  const size_t at = 1 + stanza.name().size();
  if (bytes.size() <= at || bytes[0] != '<' || bytes.compare(1, stanza.name().size(), stanza.name()) != 0 ||
      (bytes[at] != ' ' && bytes[at] != '>' && bytes[at] != '/'))
    return nullptr;
  shared->head = bytes.substr(0, at);
  shared->tail = bytes.substr(at);
  shared->stanza = std::move(stanza);
  return shared;
}

Delivery::Delivery(std::shared_ptr<const SharedStanza> s, std::string recipient)
    : shared(std::move(s)), to(std::move(recipient)) {}

xml::Element& Delivery::element() {
  if (!shared || made) return stanza;
  if (lent != nullptr) return lent->for_to(to);
  stanza = shared->stanza;
  stanza.set_attr("to", to);
  made = true;
  return stanza;
}

std::string_view Delivery::wire(std::string& scratch) const {
  if (!shared) return bytes;
  scratch.clear();
  scratch.reserve(wire_size());
  scratch += shared->head;
  append_to_attr(scratch, to);
  scratch += shared->tail;
  return scratch;
}

size_t Delivery::wire_size() const {
  if (!shared) return bytes.size();
  size_t escaped = to.size();
  for (char c : to) {
    switch (c) {
      case '&': escaped += 4; break;                   // &amp;
      case '<': case '>': case '\t': escaped += 3; break;  // &lt; &gt; &#9;
      case '\'': case '"': escaped += 5; break;          // &apos; &quot;
      case '\n': case '\r': escaped += 4; break;         // &#10; &#13;
      default: break;
    }
  }
  return shared->head.size() + shared->tail.size() + escaped + 6;  // " to='" and "'"
}

void Router::route_shared(xml::Element stanza, const std::vector<std::string>& recipients, unsigned loop) {
  if (recipients.empty()) return;
  if (ModulePause& pause = ctx_.loops[loop]->module_pause; pause.active()) [[unlikely]] {
    auto held = std::make_shared<std::pair<xml::Element, std::vector<std::string>>>(std::move(stanza), recipients);
    pause.defer([this, held, loop] { route_shared(std::move(held->first), held->second, loop); });
    return;
  }
  const std::string& name = stanza.name();
  const bool message = name == "message";
  auto shared = (message || name == "presence") ? SharedStanza::make(stanza) : nullptr;
  if (!shared) {
    // Not a broadcast the router shares (an iq, an unsplittable name): each its own.
    for (const std::string& to : recipients) {
      xml::Element copy(stanza);
      copy.set_attr("to", to);
      route(std::move(copy), loop);
    }
    return;
  }
  const parley_event event = message ? PARLEY_EVENT_MESSAGE_TO_LOCAL : PARLEY_EVENT_PRESENCE_TO_LOCAL;
  const ModuleTables& tables = *ctx_.loops[loop]->modules;
  // The recipients' hooks run here, on one element with each one's 'to'.
  SharedView hooked{shared.get(), {}};
  std::vector<std::vector<std::pair<SessionId, std::string>>> batches(ctx_.loops.size());
  auto one_by_one = [&](const std::string& to) {
    xml::Element copy(shared->stanza);
    copy.set_attr("to", to);
    route(std::move(copy), loop);
  };
  for (const std::string& to : recipients) {
    // A bound local session's full JID is the session table's key byte for
    // byte (the table holds prepared JIDs): then it needs no preparation.
    // Anything else takes the whole route (stringprep, the rules for an
    // absent resource, other domains).
    const size_t slash = to.find('/');
    const size_t at = to.find('@');
    if (slash == std::string::npos || at == std::string::npos || at > slash || slash + 1 == to.size()) {
      one_by_one(to);
      continue;
    }
    const std::string_view bare = std::string_view(to).substr(0, slash);
    const std::string_view domain = bare.substr(at + 1);
    std::optional<SessionRef> ref;
    if (ctx_.is_local_host(domain)) ref = ctx_.sessions.find(bare, std::string_view(to).substr(slash + 1));
    if (!ref) {
      one_by_one(to);
      continue;
    }
    if (tables.hooks_for(event, domain) != nullptr) {
      xml::Element& element = hooked.for_to(to);
      MutationScope scope(&element);  // what a hook builds for itself does not count
      const uint64_t before = element_mutations;
      parley_event_args args{};
      args.stanza = reinterpret_cast<parley_element*>(&element);
      args.user = to_pstr(bare.substr(0, at));
      args.host = to_pstr(domain);
      args.jid = to_pstr(to);
      parley_result result = run_hooks(tables, event, domain, args);
      if (result == PARLEY_HANDLED) {
        // A hook took it: it may keep nothing of ours, but may have changed it.
        if (element_mutations != before) hooked.element.reset();
        continue;
      }
      if (result == PARLEY_ERROR) {
        bounce(element, "internal-server-error", loop);
        if (element_mutations != before) hooked.element.reset();
        continue;
      }
      if (element_mutations != before) {
        // Changed for this recipient (or a hook built elements meanwhile):
        // its own stanza, serialized for it; the next ones start afresh.
        xml::Element own = std::move(*hooked.element);
        hooked.element.reset();
        deliver_to_session(ref->id, std::make_shared<Delivery>(std::move(own)), loop);
        continue;
      }
    }
    const unsigned target = loop_of(ref->id);
    if (target >= batches.size()) {
      one_by_one(to);
      continue;
    }
    batches[target].emplace_back(ref->id, to);
  }
  // Other loops first (they run in parallel with what this loop does next).
  for (unsigned target = 0; target < batches.size(); ++target) {
    auto& batch = batches[target];
    if (batch.empty() || target == loop) continue;
    LoopContext& from = *ctx_.loops[loop];
    LoopContext& to = *ctx_.loops[target];
    if (from.routed_to) {
      int64_t queued = from.routed_to[target].get() - to.received_from[loop].get();
      if (queued >= static_cast<int64_t>(ctx_.config.limits.max_route_queue)) {
        // The route is full: each recipient's copy is refused as route() would.
        for (auto& [id, recipient] : batch) {
          auto delivery = std::make_shared<Delivery>(shared, std::move(recipient));
          delivery->outstanding.store(1, std::memory_order_relaxed);
          route_full(std::move(delivery), loop);
        }
        continue;
      }
      from.routed_to[target].add();
    }
    from.metrics.stanzas_routed_cross_loop.add(static_cast<int64_t>(batch.size()));
    to.loop.post([this, shared, batch = std::move(batch), target, loop]() mutable {
      deliver_shared(shared, batch, target);
      LoopContext& here = *ctx_.loops[target];
      if (here.received_from) here.received_from[loop].add();
    });
  }
  if (!batches[loop].empty()) deliver_shared(shared, batches[loop], loop);
}

void Router::deliver_shared(const std::shared_ptr<const SharedStanza>& shared,
                            std::vector<std::pair<SessionId, std::string>>& batch, unsigned loop) {
  SharedView view{shared.get(), {}};
  for (auto& [id, to] : batch) {
    auto delivery = std::make_shared<Delivery>(shared, std::move(to));
    delivery->outstanding.store(1, std::memory_order_relaxed);
    // Lent for the call: a hook that reads the stanza (MESSAGE_DELIVERED)
    // reads this loop's element with this recipient's 'to'; whatever keeps
    // the delivery past the call makes its own (Delivery::element).
    delivery->lent = &view;
    const uint64_t before = element_mutations;
    deliver_here(id, delivery, loop);
    delivery->lent = nullptr;
    if (element_mutations != before) view.element.reset();  // the next recipient's starts afresh
  }
}

}  // namespace parley
