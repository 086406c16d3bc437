#include "core/router/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>

#include "core/addr/jid_cache.hpp"
#include "core/addr/jid_text.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/component/component_directory.hpp"
#include "core/session/session.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/pending_iqs.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_errors.hpp"
#include "storage/storage_pool.hpp"
#include "storage/account_store.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

bool is_subscription_type(std::string_view type) {
  return type == "subscribe" || type == "subscribed" || type == "unsubscribe" || type == "unsubscribed";
}

// The delivery and its reference count in one block from the element pool
// (xml/element_pool.hpp): made per routed stanza on the reading loop,
// dropped on the writing one.
template <class... Args>
std::shared_ptr<Delivery> make_delivery(Args&&... args) {
  return std::allocate_shared<Delivery>(xml::PoolAllocator<Delivery>(), std::forward<Args>(args)...);
}

}  // namespace

Delivery::Delivery(xml::Element s) : stanza(std::move(s)) {
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  bytes = xml::serialize(stanza, ctx);
}

Router::Router(ServerContext& ctx) : ctx_(ctx) {}

void Router::bounce(const xml::Element& stanza, std::string_view condition, unsigned loop, std::string_view text) {
  if (is_error_stanza(stanza)) return;  // never answer an error with an error
  xml::Element error = make_stanza_error(stanza, condition, text);
  if (!error.has_attr("from")) {
    // RFC 6120 §10.3: a stanza without 'to' was for the sender's own account,
    // so the error comes from that bare JID.
    auto sender = Jid::parse(stanza.attr("from"));
    if (!sender) return;
    error.set_attr("from", sender->bare_str());
  }
  route(std::move(error), loop);
}

void Router::route(xml::Element stanza, unsigned loop) {
  // Through the loop's cache of prepared addresses (a module's sends, bounces).
  auto from = jid_cache::parse(stanza.attr("from"));
  if (!from) {
    spdlog::warn("router: dropping stanza with invalid from '{}'", stanza.attr("from"));
    return;
  }
  std::string_view to_text = stanza.attr("to");
  if (to_text.empty()) {
    route(std::move(stanza), *from, Jid(), loop);
    return;
  }
  auto to = jid_cache::parse(to_text);
  if (!to) {
    bounce(stanza, "jid-malformed", loop);
    return;
  }
  route(std::move(stanza), *from, *to, loop);
}

void Router::route(xml::Element stanza, const Jid& from, const Jid& given_to, unsigned loop) {
  Jid own;
  const Jid* to = &given_to;
  if (given_to.empty()) {
    // RFC 6120 §10.3: no 'to' means the sender's own account. Say so, so
    // that a reply or an error comes from that account.
    own = from.bare();
    stanza.set_attr("to", own.full());
    to = &own;
  }
  if (stanza.name() == "iq" && to->is_bare()) {
    // An answer to an iq a module sent goes to the module, whatever the
    // domain: the id names the loop that waits; the sender is checked there.
    std::string_view type = stanza.attr("type");
    if (type == "result" || type == "error") {
      if (auto owner = PendingIqs::owner_loop(stanza.attr("id"))) {
        answer_module_iq(std::move(stanza), from, *owner, loop);
        return;
      }
    }
  }
  // Routing may enter module code (hooks, iq handlers, services): while
  // modules are swapped (hot reload) it waits, in order, for the new code.
  if (ModulePause& pause = ctx_.loops[loop]->module_pause; pause.active()) [[unlikely]] {
    auto held = std::make_shared<xml::Element>(std::move(stanza));
    pause.defer([this, held, from, to = *to, loop] { route(std::move(*held), from, to, loop); });
    return;
  }
  // The route table: a served host (below), else an external component's
  // domain, else a module's service domain, else nothing yet (s2s and
  // cluster routes come later).
  if (!ctx_.is_local_host(to->domain())) {
    if (ctx_.components && route_to_component(ctx_, stanza, *to, loop)) return;
    if (const ServiceEntry* service = ctx_.loops[loop]->modules->service_for(to->domain())) {
      route_to_service(std::move(stanza), from, *to, *service, loop);
      return;
    }
    // No server-to-server yet (RFC 6120 §10.4.2 via §8.3.3.14).
    bounce(stanza, "remote-server-not-found", loop);
    return;
  }
  if (!to->has_local()) {
    route_to_server(std::move(stanza), from, *to, loop);
    return;
  }
  route_to_account(std::move(stanza), from, *to, loop);
}

void Router::route_to_service(xml::Element&& stanza, const Jid& from, const Jid& to, const ServiceEntry& service,
                              unsigned loop) {
  std::string from_text = from.full();
  std::string to_text = to.full();
  parley_route_request request{sizeof(parley_route_request), reinterpret_cast<parley_element*>(&stanza),
                               to_pstr(from_text), to_pstr(to_text), to_pstr(to.domain())};
  int result;
  try {
    result = service.fn(service.instance->state, &request);
  } catch (...) {
    result = PARLEY_ERROR;
  }
  if (result == PARLEY_HANDLED || result == PARLEY_STOP) return;
  if (result != PARLEY_PASS) {
    spdlog::error("module {} failed on a stanza for {}", service.instance->library->name, to.domain());
    bounce(stanza, "internal-server-error", loop);
    return;
  }
  // Not taken: what a server answers for an address it serves but nothing is at.
  std::string_view type = stanza.attr("type");
  if (stanza.name() == "iq" ? (type == "get" || type == "set") : (stanza.name() == "message" && type != "error"))
    bounce(stanza, "service-unavailable", loop);
}

void Router::answer_module_iq(xml::Element&& stanza, const Jid& from, unsigned owner, unsigned loop) {
  if (owner >= ctx_.loops.size()) return;
  if (owner == loop) {
    ctx_.loops[loop]->pending_iqs->complete(stanza, from);
    return;
  }
  auto answer = std::make_shared<std::pair<xml::Element, Jid>>(std::move(stanza), from);
  ctx_.loops[owner]->loop.post([this, answer, owner] {
    ctx_.loops[owner]->pending_iqs->complete(answer->first, answer->second);
  });
}

void Router::route_to_server(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop) {
  const std::string& name = stanza.name();
  if (name == "iq") {
    handle_iq(std::move(stanza), from, to, PARLEY_IQ_SERVER, loop);
    return;
  }
  if (name == "message") {
    // §10.3.1: the server either ignores a message to itself or answers
    // service-unavailable; a chat or normal message deserves an answer.
    std::string_view type = stanza.attr("type");
    if (type != "error" && type != "headline" && type != "groupchat") bounce(stanza, "service-unavailable", loop);
    return;
  }
  // Presence to the server itself: nothing to do (§10.3.2).
}

void Router::handle_iq(xml::Element&& stanza, const Jid& from, const Jid& to, uint32_t scope, unsigned loop) {
  std::string_view type = stanza.attr("type");
  if (type != "get" && type != "set") return;  // results and errors to the server end here
  const xml::Element* payload = stanza.first_child();
  if (payload != nullptr) {
    // Every iq the server answers is a module's (ejabberd's gen_iq_handler).
    if (const IqEntry* entry = ctx_.loops[loop]->modules->iq_for(to.domain(), scope, type, payload->xmlns())) {
      std::string from_text = from.full();
      std::string to_text = to.full();
      SessionId requester = 0;
      if (auto ref = ctx_.sessions.find(from.bare_str(), from.resource())) requester = ref->id;
      parley_iq_request request{sizeof(parley_iq_request), reinterpret_cast<const parley_element*>(&stanza),
                                to_pstr(from_text), to_pstr(to_text), requester};
      int result;
      try {
        result = entry->fn(entry->instance->state, &request);
      } catch (...) {
        result = PARLEY_ERROR;
      }
      if (result == PARLEY_HANDLED || result == PARLEY_STOP) return;
      if (result != PARLEY_PASS) {  // PARLEY_ERROR, or a value that is no result at all
        spdlog::error("module {} failed on an iq for {}", entry->instance->library->name, payload->xmlns());
        bounce(stanza, "internal-server-error", loop);
        return;
      }
    }
  }
  bounce(stanza, "service-unavailable", loop);
}

void Router::check_account(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop) {
  struct Pending {
    xml::Element stanza;
    Jid from;
    Jid to;
    SessionId held = 0;  // the sender's session, whose input waits for the answer
  };
  auto pending = std::make_shared<Pending>(Pending{std::move(stanza), from, to});
  // The sender's next stanzas wait for this one: another sender's check may
  // put the account in the cache meanwhile, and a later stanza must not
  // overtake this one through it.
  if (!from.resource().empty() && ctx_.is_local_host(from.domain())) {
    if (auto ref = ctx_.sessions.find(from.bare_str(), from.resource()); ref && loop_of(ref->id) == loop) {
      if (Session* sender = ctx_.loops[loop]->find(ref->id)) {
        sender->hold_input();
        pending->held = ref->id;
      }
    }
  }
  // On the single writer, not a reader: checks complete in the order the
  // stanzas came, so messages to an offline user are stored in order.
  ctx_.accounts->write([this, pending, loop](storage::AccountBackend& accounts) {
    auto exists = accounts.user_exists(pending->to.domain(), pending->to.local());
    // A storage error is not proof of absence: deliver rather than lose it.
    bool known = !exists || *exists;
    bool confirmed = exists && *exists;
    auto go_on = [this, pending, loop, known, confirmed] {
      if (known) {
        if (confirmed) ctx_.known_accounts.add(pending->to.bare_str());
        route_to_account(std::move(pending->stanza), pending->from, pending->to, loop, true);
      } else {
        no_such_user(std::move(pending->stanza), pending->from, pending->to, loop);
      }
      // After the routing: a module that holds the sender too (an offline
      // commit) has done so by now, so its hold carries on without a gap.
      if (pending->held != 0)
        if (Session* sender = ctx_.loops[loop]->find(pending->held)) sender->release_input();
    };
    // Module code comes next: it waits while modules are swapped.
    ctx_.loops[loop]->loop.post([this, loop, go_on] { run_or_defer(ctx_.loops[loop]->module_pause, go_on); });
  });
}

void Router::no_such_user(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop) {
  // RFC 6121 §8.5.1: an iq gets service-unavailable, a message either that or
  // silence (we answer, so that the sender learns it), every presence
  // (subscriptions and probes included) is silently ignored.
  const std::string& name = stanza.name();
  std::string_view type = stanza.attr("type");
  if (name == "iq" && type == "get" && to.resource().empty()) {
    // Except disco#items to the bare JID: XEP-0030 §7 wants the same empty
    // result set for an account that does not exist as for one that shows
    // nothing, so that the answer reveals nothing. The account's handler
    // answers it as it would for any account the requester cannot see into.
    const xml::Element* payload = stanza.first_child();
    if (payload != nullptr && payload->name() == "query" && payload->xmlns() == ns::disco_items) {
      handle_iq(std::move(stanza), from, to, PARLEY_IQ_ACCOUNT, loop);
      return;
    }
  }
  if (name == "iq" && (type == "get" || type == "set")) bounce(stanza, "service-unavailable", loop);
  if (name == "message" && type != "error") bounce(stanza, "service-unavailable", loop);
}

void Router::route_to_account(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop, bool checked) {
  // Built once, on the stack: every look-up below is by the bare JID.
  const JidText bare_text(to, JidText::bare);
  const std::string_view bare = bare_text.view();
  // A user with a session exists; for one without, storage decides before
  // any module stores anything for a name nobody holds.
  if (!checked && ctx_.accounts != nullptr && !ctx_.sessions.has_sessions(bare) &&
      !ctx_.known_accounts.contains(std::string(bare))) {
    check_account(std::move(stanza), from, to, loop);
    return;
  }
  // Modules see (and may take or change) what comes to a local user. On the
  // hot path: the arguments are built only when a module listens.
  const std::string& kind = stanza.name();
  parley_event event = kind == "message"    ? PARLEY_EVENT_MESSAGE_TO_LOCAL
                       : kind == "presence" ? PARLEY_EVENT_PRESENCE_TO_LOCAL
                                            : PARLEY_EVENT_IQ_TO_LOCAL;
  const ModuleTables& tables = *ctx_.loops[loop]->modules;
  if (tables.hooks_for(event, to.domain()) != nullptr) {
    const JidText jid_text(to);  // on the stack: no string per stanza
    parley_event_args args{};
    args.stanza = reinterpret_cast<parley_element*>(&stanza);
    args.user = to_pstr(to.local());
    args.host = to_pstr(to.domain());
    args.jid = to_pstr(jid_text.view());
    parley_result result = run_hooks(tables, event, to.domain(), args);
    if (result == PARLEY_HANDLED) return;
    if (result == PARLEY_ERROR) {
      bounce(stanza, "internal-server-error", loop);
      return;
    }
  }
  const std::string& name = stanza.name();
  std::string_view type = stanza.attr("type");

  if (!to.resource().empty()) {
    // A session of this loop that is leaving is gone for this loop's router
    // (Session::leave_session_table); another loop's is routed to as usual.
    if (auto ref = ctx_.sessions.find(bare, to.resource()); ref && !(ref->leaving && loop_of(ref->id) == loop)) {
      deliver_to_session(ref->id, make_delivery(std::move(stanza)), loop);
      return;
    }
    // RFC 6121 §8.5.3.2: no such resource.
    if (name == "message") {
      // §8.5.3.2.1: only a chat message is handled as if sent to the bare
      // JID. For normal (also a missing or unknown type, RFC 6121 §5.2.2),
      // groupchat and headline the server either ignores it or answers
      // service-unavailable: normal and groupchat are answered, so that the
      // sender learns it was not delivered; a headline is transient and is
      // dropped, as is an error (never answered).
      if (type == "chat") {
        route_to_bare(std::move(stanza), from, to.bare(), loop);
      } else if (type != "headline" && type != "error") {
        bounce(stanza, "service-unavailable", loop);
      }
    } else if (name == "presence") {
      if (is_subscription_type(type)) route_to_bare(std::move(stanza), from, to.bare(), loop);
    } else if (name == "iq") {
      if (type == "get" || type == "set") bounce(stanza, "service-unavailable", loop);
    }
    return;
  }
  route_to_bare(std::move(stanza), from, to, loop);
}

void Router::route_to_bare(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop, bool fenced) {
  const std::string& name = stanza.name();
  std::string_view type = stanza.attr("type");

  if (name == "iq") {
    handle_iq(std::move(stanza), from, to, PARLEY_IQ_ACCOUNT, loop);
    return;
  }

  SessionTargets found;  // no resource strings copied, no allocation for up to 8 sessions
  ctx_.sessions.targets_of(JidText(to, JidText::bare).view(), found);
  std::span<SessionTarget> sessions = found.all();
  // This loop's leaving sessions are gone for it (Session::leave_session_table).
  for (SessionTarget& s : sessions)
    if (s.leaving && loop_of(s.id) == loop) s.available = false;
  // Nearly always one recipient: it needs no vector (no allocation).
  SessionId single = 0;
  size_t count = 0;
  std::vector<SessionId> targets;
  auto add = [&](SessionId id) {
    if (count++ == 0) {
      single = id;
      return;
    }
    if (targets.empty()) targets.push_back(single);
    targets.push_back(id);
  };

  if (name == "message") {
    if (type == "error") return;  // §8.5.2.1.1 / §8.5.2.2.1: silently ignored
    if (type == "groupchat") {
      bounce(stanza, "service-unavailable", loop);
      return;
    }
    int best = INT_MIN;
    for (const auto& s : sessions) {
      if (s.available && s.priority >= 0) best = std::max(best, s.priority);
    }
    for (const auto& s : sessions) {
      if (!s.available || s.priority < 0) continue;
      // headline: every non-negative resource; chat and normal: the most available ones.
      if (type == "headline" || s.priority == best) add(s.id);
    }
    if (count == 0) {
      // §8.5.2.2.1: no available resource. Offline storage is a module's
      // business (a hook that returns HANDLED stored it); without one, chat
      // and normal messages are bounced.
      if (type == "headline") return;
      if (!fenced && fence_offline(stanza, from, to, loop)) return;
      parley_event_args args{};
      args.stanza = reinterpret_cast<parley_element*>(&stanza);
      args.user = to_pstr(to.local());
      args.host = to_pstr(to.domain());
      // The sender's session, when it is a client of this loop: a module may
      // hold its input until the message is durable (ABI 1.1).
      if (!from.resource().empty() && ctx_.is_local_host(from.domain())) {
        if (auto ref = ctx_.sessions.find(from.bare_str(), from.resource()); ref && loop_of(ref->id) == loop)
          args.session = ref->id;
      }
      parley_result result = run_hooks(*ctx_.loops[loop]->modules, PARLEY_EVENT_OFFLINE_MESSAGE, to.domain(), args);
      if (result == PARLEY_HANDLED) return;
      bounce(stanza, result == PARLEY_ERROR ? "internal-server-error" : "service-unavailable", loop);
      return;
    }
  } else if (name == "presence") {
    if (type == "probe") return;  // answered by the presence module
    for (const auto& s : sessions) {
      if (s.available) add(s.id);
    }
    if (count == 0) return;
  } else {
    return;
  }

  if (count == 1) {
    deliver_to_session(single, make_delivery(std::move(stanza)), loop);
    return;
  }
  deliver_to_sessions(targets, make_delivery(std::move(stanza)), loop);
}

bool Router::fence_offline(xml::Element& stanza, const Jid& from, const Jid& to, unsigned loop) {
  // A sender's messages to one contact stay in order (XEP-0160, and what
  // users expect). This one goes to the offline rules from here. Its
  // sender's earlier ones may still be on a route to the contact's session
  // on another loop; if that session is gone (its connection cut) they reach
  // the same rules from there, later, and would be stored after this one.
  // So while a route from this loop holds anything, the message waits for a
  // no-op posted behind it on each such route to come back (each loop's
  // inbox is FIFO per producer), with its sender's input held. Only the
  // offline path pays: two posts, no lock, nothing on the delivery path.
  LoopContext& here = *ctx_.loops[loop];
  if (!here.routed_to || from.resource().empty() || !ctx_.is_local_host(from.domain())) return false;
  // At shutdown a stopped loop would never post back: stored at once instead.
  if (ctx_.shutting_down.load(std::memory_order_relaxed)) return false;
  auto ref = ctx_.sessions.find(from.bare_str(), from.resource());
  if (!ref || loop_of(ref->id) != loop) return false;  // not a client of this loop: nothing to order against
  Session* sender = here.find(ref->id);
  if (sender == nullptr) return false;
  std::vector<unsigned> busy;
  for (unsigned t = 0; t < ctx_.loops.size(); ++t) {
    if (t != loop && here.routed_to[t].get() != ctx_.loops[t]->received_from[loop].get_acquire()) busy.push_back(t);
  }
  if (busy.empty()) return false;
  struct Fence {
    xml::Element stanza;
    Jid from;
    Jid to;
    SessionId sender;
    size_t waiting;
  };
  auto fence = std::make_shared<Fence>(Fence{std::move(stanza), from, to, ref->id, busy.size()});
  sender->hold_input();
  for (unsigned t : busy) {
    ctx_.loops[t]->loop.post([this, fence, loop] {
      ctx_.loops[loop]->loop.post([this, fence, loop] {
        if (--fence->waiting != 0) return;
        // Module code comes next (the offline hooks): it waits while modules are swapped.
        run_or_defer(ctx_.loops[loop]->module_pause, [this, fence, loop] {
          route_to_bare(std::move(fence->stanza), fence->from, fence->to, loop, true);
          if (Session* s = ctx_.loops[loop]->find(fence->sender)) s->release_input();
        });
      });
    });
  }
  return true;
}

void Router::deliver_to_session(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop) {
  delivery->outstanding.store(1, std::memory_order_relaxed);
  delivery->targets = 1;
  dispatch(id, std::move(delivery), loop, true);
}

void Router::deliver_to_sessions(const std::vector<SessionId>& ids, std::shared_ptr<Delivery> delivery,
                                 unsigned loop) {
  if (ids.size() == 1) {
    deliver_to_session(ids.front(), std::move(delivery), loop);
    return;
  }
  delivery->outstanding.store(static_cast<int>(ids.size()), std::memory_order_relaxed);
  delivery->targets = static_cast<int>(ids.size());
  for (SessionId id : ids) dispatch(id, delivery, loop, false);
}

void Router::dispatch(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop, bool single) {
  unsigned target = loop_of(id);
  if (target == loop) {
    deliver_here(id, std::move(delivery), loop);
    return;
  }
  if (target >= ctx_.loops.size()) {
    undeliverable(std::move(delivery), loop);
    return;
  }
  LoopContext& from = *ctx_.loops[loop];
  LoopContext& to = *ctx_.loops[target];
  if (from.routed_to) {
    // This route's own bound: one slow loop never makes another queue
    // without end (the sender hears of it instead).
    int64_t queued = from.routed_to[target].get() - to.received_from[loop].get();
    if (queued >= static_cast<int64_t>(ctx_.config.limits.max_route_queue)) {
      route_full(std::move(delivery), loop);
      return;
    }
    from.routed_to[target].add();
  }
  from.metrics.stanzas_routed_cross_loop.add();
  if (single) {
    Delivery::Hop& hop = delivery->hop;
    hop.router = this;
    hop.id = id;
    hop.source = loop;
    hop.target = target;
    hop.fn = &Router::run_hop;
    hop.self = std::move(delivery);
    to.loop.post_task(&hop);
    return;
  }
  to.loop.post([this, id, delivery = std::move(delivery), target, loop]() mutable {
    deliver_here(id, std::move(delivery), target);
    // After: whatever the delivery did (a session gone: routed on, to offline
    // storage say) is done when the source sees the route empty (fence_offline).
    LoopContext& here = *ctx_.loops[target];
    if (here.received_from) here.received_from[loop].add();
  });
}

void Router::run_hop(LoopTask* task, bool run) {
  auto& hop = *static_cast<Delivery::Hop*>(task);
  std::shared_ptr<Delivery> delivery = std::move(hop.self);  // the hop is free again from here
  if (!run) return;
  Router& router = *hop.router;
  const unsigned source = hop.source;
  const unsigned target = hop.target;
  router.deliver_here(hop.id, std::move(delivery), target);
  // As for a posted delivery (dispatch): counted once it is done.
  LoopContext& here = *router.ctx_.loops[target];
  if (here.received_from) here.received_from[source].add();
}

void Router::deliver_here(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop) {
  Session* session = ctx_.loops[loop]->find(id);
  if (session != nullptr && session->deliver(delivery)) {
    // Taken. The write it made may have cut the connection, which handed it
    // back within the same call (a batch that reached flush_at): then ours is
    // the last hold, and nobody wrote it: routed again, not dropped.
    if (delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        !delivery->written.load(std::memory_order_relaxed))
      route(xml::Element(delivery->element()), loop);
    return;
  }
  undeliverable(std::move(delivery), loop);
}

void Router::route_full(std::shared_ptr<Delivery> delivery, unsigned loop) {
  if (delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (delivery->written.load(std::memory_order_relaxed)) return;
  ctx_.loops[loop]->metrics.stanzas_refused_route_full.add();
  bounce(delivery->element(), "resource-constraint", loop, "The server is busy; try again later");
}

void Router::undeliverable(std::shared_ptr<Delivery> delivery, unsigned loop) {
  // The session closed between lookup and delivery. It left the session table
  // before it closed, so routing again applies RFC 6121's rules for a
  // resource that is gone (another resource, or the bare-JID rules).
  if (delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Taken by a session that wrote it (or, fanned out, by several, one of
  // which wrote it): delivered. Else nobody has it: route it again.
  if (delivery->written.load(std::memory_order_relaxed)) return;
  route(xml::Element(delivery->element()), loop);
}

void Router::reroute_unwritten(std::shared_ptr<Delivery> delivery, unsigned loop) {
  // The session gives back its hold. Fanned out (a headline, a message to
  // equal resources, a presence broadcast): only the last party, if no
  // session wrote it (routing it again would duplicate it otherwise). Then
  // the rules for a resource that is gone: another resource, offline
  // storage, an error to the sender; a presence that is not a subscription
  // is dropped, as for any absent resource.
  if (delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (delivery->written.load(std::memory_order_relaxed)) return;
  route(xml::Element(delivery->element()), loop);
}

}  // namespace parley
