// A session's life (announce, bind, end), its outbound path (deliveries,
// the outgoing filters, tracked sends), its own presence and the modules'
// slots. Detach and re-attach are in session_attach.cpp.
#include "core/session/session.hpp"

#include <spdlog/spdlog.h>

#include "core/addr/jid_text.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/modules/element_mutations.hpp"
#include "core/modules/host_api_out_bytes.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session_waiting.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_log.hpp"
#include "xml/serializer.hpp"

namespace parley {

Session::Session(ServerContext& ctx, LoopContext& loop, SessionId id) : ctx_(ctx), loop_(loop), id_(id) {}

Session::~Session() {
  // Streams first: a stream still refers to its session while it goes.
  stream_.reset();
  if (waiting_) {
    // Only at shutdown (the loops stopped): what waited is settled.
    for (auto& w : waiting_->stanzas) w.delivery->outstanding.fetch_sub(1);
    stop_detach_timer();
  }
  for (auto& slot : module_slots_)
    if (slot.free_fn) slot.free_fn(slot.data);
}

const std::string& Session::peer_ip() const {
  if (stream_) return stream_->connection().peer_ip();
  static const std::string none;
  return waiting_ ? waiting_->peer_ip : none;
}

void Session::adopt_stream(std::unique_ptr<C2sStream> stream) { stream_ = std::move(stream); }

std::unique_ptr<C2sStream> Session::release_stream() { return std::move(stream_); }

parley_result Session::run_hook(parley_event event, xml::Element* stanza) {
  if (stanza == nullptr && event != PARLEY_EVENT_SESSION_CLOSING && event != PARLEY_EVENT_STREAM_CLOSING) {
    // A session event: it waits while modules are swapped (hot reload). The two
    // above are asked now: their answer, or what they write, is needed before
    // the core goes on.
    run_session_event(loop_, event, id_, host_, jid_);
    return PARLEY_PASS;
  }
  // Every stanza passes here: build the arguments only if a module listens.
  if (!loop_.modules || loop_.modules->hooks_for(event, host_) == nullptr) return PARLEY_PASS;
  const JidText full(jid_);  // on the stack: no string per stanza and hook event
  parley_event_args args{};
  args.session = id_;
  args.stanza = reinterpret_cast<parley_element*>(stanza);
  args.user = to_pstr(jid_.local());
  args.host = to_pstr(host_);
  args.jid = to_pstr(full.view());
  // The two session events asked now (above) skip a module being reloaded: its state
  // may be saved already, and its old code is never entered after that.
  const bool asked_now = stanza == nullptr;
  return run_hooks(*loop_.modules, event, host_, args, asked_now ? &loop_.module_pause : nullptr);
}

void Session::announce() {
  if (announced_ || state_ == State::ended) return;
  announced_ = true;
  run_hook(PARLEY_EVENT_SESSION_OPENED, nullptr);
}

void Session::bind(Jid full) {
  jid_ = std::move(full);
  state_ = State::bound;
}

void Session::set_presence(bool available, int priority) {
  available_ = available;
  priority_ = priority;
  ctx_.sessions.set_presence(jid_.bare_str(), id_, available, priority);
}

void Session::end(bool handing_back) {
  if (state_ == State::ended) return;
  bool was_detached = state_ == State::detached;
  state_ = State::ended;
  attaching_ = false;
  if (announced_) {
    announced_ = false;
    run_hook(PARLEY_EVENT_SESSION_CLOSED, nullptr);
  }
  leave_session_table(handing_back || was_detached);
  if (was_detached) {
    stop_detach_timer();
    reroute_waiting();
  }
}

namespace {

// Out of the session table, and the account's other available resources
// told: an abrupt end is an unavailable presence all the same (RFC 6121 §4.5.4).
// `later`: the session ended a while ago (leave_session_table); if a new
// session has taken the resource meanwhile, it is the one online under that
// full JID now: nothing is said.
void unbind_and_tell(ServerContext& ctx, const Jid& jid, SessionId id, bool was_available, unsigned loop,
                     bool later) {
  if (!ctx.sessions.unbind(jid.bare_str(), jid.resource(), id) && later) return;
  if (!was_available || ctx.shutting_down.load()) return;
  for (const SessionRef& ref : ctx.sessions.sessions_of(jid.bare_str())) {
    if (!ref.available) continue;
    xml::Element presence("presence", std::string(ns::client));
    presence.set_attr("type", "unavailable");
    presence.set_attr("from", jid.full());
    presence.set_attr("to", jid.bare().with_resource(ref.resource).full());
    ctx.router->deliver_to_session(ref.id, std::make_shared<Delivery>(std::move(presence)), loop);
  }
}

}  // namespace

void Session::leave_session_table(bool handing_back) {
  if (jid_.empty() || jid_.resource().empty()) return;
  bool was_available = available_;
  available_ = false;
  const unsigned here = loop_.loop.index();
  if (!handing_back || ctx_.loops.size() < 2 || ctx_.shutting_down.load()) {
    unbind_and_tell(ctx_, jid_, id_, was_available, here, false);
    return;
  }
  // The stanzas this session held (what its connection accepted and did not
  // write, what waited while it was detached) are routed again from this loop
  // right after this call; a stanza another loop routes to the account once
  // the session is out of the table must come after them (RFC 6120 §10.1:
  // per-sender order; offline storage keeps that order). Out of the table at
  // once, another loop could store a newer message first: it would not see
  // the session, nor wait for anything (Router::fence_offline waits only for
  // its own routes), while this loop's re-routing is still on its way (an
  // admission posted to mod_offline's owner loop, say). So the session stays
  // in the table, marked leaving: this loop's router skips it (what it held
  // goes to another resource, offline storage or an error), other loops go
  // on routing to it, and this loop routes those again, after what it held
  // (its inbox is FIFO per producer). It leaves the table once everything
  // this loop posted before has reached every other loop: a post to itself
  // (after the hand-back of this call stack), then one to each other loop
  // that answers back. No lock: three posts per loop, on a cut only.
  ctx_.sessions.set_leaving(jid_.bare_str(), jid_.resource(), id_);
  struct Leaving {
    ServerContext* ctx;
    Jid jid;
    SessionId id;
    bool was_available;
    unsigned loop;
    size_t waiting;  // answers to come (touched on `loop` only)
  };
  auto leaving = std::make_shared<Leaving>(Leaving{&ctx_, jid_, id_, was_available, here, ctx_.loops.size() - 1});
  loop_.loop.post([leaving] {
    ServerContext& ctx = *leaving->ctx;
    for (unsigned t = 0; t < ctx.loops.size(); ++t) {
      if (t == leaving->loop) continue;
      ctx.loops[t]->loop.post([leaving] {
        leaving->ctx->loops[leaving->loop]->loop.post([leaving] {
          if (--leaving->waiting != 0) return;
          unbind_and_tell(*leaving->ctx, leaving->jid, leaving->id, leaving->was_available, leaving->loop, true);
        });
      });
    }
  });
}

void Session::stream_closed(C2sStream* stream) {
  if (stream_.get() != stream) return;  // not ours (cannot happen: orphans free themselves)
  if (state_ == State::detached) {
    stream_.reset();
    return;
  }
  // The session ended with its stream: nothing refers to it any more.
  end();
  loop_.sessions.erase(id_);
}

void Session::close(std::string_view condition, std::string_view text) {
  if (state_ == State::ended) return;
  if (state_ == State::detached || !stream_) {
    end();
    dispose_later();
    return;
  }
  if (condition.empty())
    stream_->close_stream();
  else
    stream_->close_with_stream_error(condition, text);
}

bool Session::cut_connection() {
  if (state_ != State::bound || !stream_ || stream_->closing()) return false;
  // Later, not inside the module's call: the connection's end runs hooks
  // (SESSION_CLOSING, SESSION_CLOSED) that must not nest in the caller's.
  LoopContext* loop = &loop_;
  SessionId id = id_;
  const C2sStream* stream = stream_.get();
  loop_.loop.post([loop, id, stream] {
    Session* self = loop->find(id);
    // The same connection still (not one that resumed the session meanwhile).
    if (self == nullptr || self->state_ != State::bound || self->stream_.get() != stream || stream->closing()) return;
    self->stream_->connection().cut();
  });
  return true;
}

// ---- outbound ----

bool Session::deliver(const std::shared_ptr<Delivery>& delivery) {
  if (state_ == State::detached) return wait(delivery, 0, true);
  if (state_ != State::bound || !stream_ || stream_->closing()) return false;
  if (loop_.module_pause.active() && has_output_hooks()) [[unlikely]] {
    // The outgoing hooks are module code: while modules are swapped the
    // stanza waits (our hold, as in the detached queue) and goes through the
    // new code's hooks, in order.
    defer_output(delivery, 0, true);
    return true;
  }
  return deliver_now(delivery, 0, true);
}

bool Session::has_output_hooks() const {
  const ModuleTables* tables = loop_.modules.get();
  return tables && (tables->hooks_for(PARLEY_EVENT_STANZA_OUT, host_) != nullptr ||
                    tables->hooks_for(PARLEY_EVENT_MESSAGE_DELIVERED, host_) != nullptr);
}

void Session::defer_output(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed) {
  delivery->outstanding.fetch_add(1, std::memory_order_relaxed);
  LoopContext* loop = &loop_;
  SessionId id = id_;
  ServerContext* ctx = &ctx_;
  loop_.module_pause.defer([loop, id, ctx, delivery, filter_from, routed] {
    Session* self = loop->find(id);
    bool taken = false;
    if (self != nullptr && self->state_ == State::detached)
      taken = self->wait(delivery, filter_from, routed);
    else if (self != nullptr && self->state_ == State::bound && self->stream_ && !self->stream_->closing())
      taken = self->deliver_now(delivery, filter_from, routed);
    if (taken)
      delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    else
      ctx->router->reroute_unwritten(delivery, loop->loop.index());
  });
}

bool Session::deliver_now(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed) {
  const ModuleTables* tables = loop_.modules.get();
  bool delivered_hooks = routed && tables && delivery->peek().name() == "message" &&
                         tables->hooks_for(PARLEY_EVENT_MESSAGE_DELIVERED, host_) != nullptr;
  bool out_hooks = tables && out_filters_apply(tables->hooks_for(PARLEY_EVENT_STANZA_OUT, host_));
  if (!delivered_hooks && !out_hooks) {
    if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, false, delivery->element(), delivery->bytes);
    return stream_->connection().deliver(delivery);
  }
  if (delivered_hooks) {
    // These hooks only look (module.h): they read the shared stanza, as the
    // other loops of a fanned-out one do meanwhile; nothing is copied.
    if (run_hook(PARLEY_EVENT_MESSAGE_DELIVERED, &delivery->element()) == PARLEY_HANDLED) {
      delivery->written.store(true, std::memory_order_relaxed);  // a module took it
      return true;
    }
    if (!out_hooks) {
      if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, false, delivery->element(), delivery->bytes);
      return stream_->connection().deliver(delivery);
    }
  }
  if (delivery->shared) {
    // A broadcast's (Router::route_shared): the filters see the element the
    // delivering loop lends (or this delivery's own), with this session's
    // 'to'; they may not keep it (a filter that holds a stanza copies it, as
    // it would the local below). Unchanged by them, the shared bytes are
    // written: no copy, no serialization for this session.
    xml::Element& element = delivery->element();
    // Only changes to this element count (an element a filter builds for
    // itself leaves the shared bytes valid); a filter that keeps what is
    // written (stanza_out_bytes) gets a reference to the shared bytes.
    MutationScope scope(&element);
    OutLentScope lent(element, delivery->shared, delivery->to);
    const uint64_t before = element_mutations;
    if (!run_out_filters(element, filter_from)) {
      delivery->written.store(true, std::memory_order_relaxed);  // a filter took it
      return true;
    }
    if (element_mutations == before) {
      if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, false, element, {});
      return stream_->connection().deliver(delivery);
    }
    // A filter changed it: serialized for this session, settled as below.
    delivery->written.store(true, std::memory_order_relaxed);
    if (auto untaken = try_write(xml::Element(element)))
      ctx_.router->reroute_unwritten(std::move(untaken), loop_.loop.index());
    return true;
  }
  // From here this session's own stanza goes, which the filters may change:
  // ours to settle (routed again through on_unwritten if the connection ends
  // before writing it). Sent to this session alone, it is taken from the
  // delivery, which nobody reads any more; fanned out, the other sessions
  // read the shared one meanwhile, and this one gets a copy.
  const bool alone = delivery->targets == 1;
  if (alone) delivery->written.store(true, std::memory_order_relaxed);
  xml::Element own = alone ? std::move(delivery->stanza) : xml::Element(delivery->stanza);
  if (run_out_filters(own, filter_from)) {
    if (auto untaken = try_write(std::move(own))) {
      // Not taken: the connection was cut right now as a slow reader (its
      // session left the table). Alone, our stanza is routed again, after the
      // ones the connection gave back; fanned out, the router's rule applies
      // (routed again only if no other session wrote it).
      if (!alone) return false;
      ctx_.router->reroute_unwritten(std::move(untaken), loop_.loop.index());
      return true;
    }
  }
  delivery->written.store(true, std::memory_order_relaxed);  // written, or a filter took it
  return true;
}

bool Session::run_out_filters(xml::Element& stanza, size_t from) {
  const std::vector<HookEntry>* hooks =
      loop_.modules ? loop_.modules->hooks_for(PARLEY_EVENT_STANZA_OUT, host_) : nullptr;
  if (hooks == nullptr || from >= hooks->size() || !out_filters_apply(hooks)) return true;
  std::string full = jid_.full();
  parley_event_args args{};
  args.session = id_;
  args.stanza = reinterpret_cast<parley_element*>(&stanza);
  args.user = to_pstr(jid_.local());
  args.host = to_pstr(host_);
  args.jid = to_pstr(full);
  // ERROR: a failing filter does not eat the stanza (run_hooks logs it).
  return run_hooks_from(*hooks, from, PARLEY_EVENT_STANZA_OUT, host_, args, nullptr, this) != PARLEY_HANDLED;
}

bool Session::write_now(xml::Element&& stanza) { return try_write(std::move(stanza)) == nullptr; }

std::shared_ptr<Delivery> Session::try_write(xml::Element&& stanza) {
  auto delivery = std::make_shared<Delivery>(std::move(stanza));
  // One dispatch of our own, given back as the router gives back its own:
  // the connection keeps a hold while the bytes are not written.
  delivery->outstanding.store(1, std::memory_order_relaxed);
  if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, false, delivery->element(), delivery->bytes);
  if (stream_->connection().deliver(delivery)) {
    if (delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1 ||
        delivery->written.load(std::memory_order_relaxed))
      return nullptr;
    // Taken, then handed back within the same call (the write it made cut the
    // connection): ours again, not taken, as below.
    delivery->outstanding.store(1, std::memory_order_relaxed);
  }
  return delivery;  // still holding our dispatch: reroute_unwritten gives it back
}

bool Session::write_stanza(xml::Element&& stanza, size_t filter_from) {
  if (state_ == State::detached) {
    // The filters see it when it is written, after re-attaching.
    auto delivery = std::make_shared<Delivery>(std::move(stanza));
    delivery->outstanding.store(1, std::memory_order_relaxed);
    bool taken = wait(delivery, filter_from, false);
    delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    return taken;
  }
  if (state_ != State::bound || !stream_ || stream_->closing()) return false;
  if (loop_.module_pause.active() && has_output_hooks()) [[unlikely]] {
    auto delivery = std::make_shared<Delivery>(std::move(stanza));
    delivery->outstanding.store(1, std::memory_order_relaxed);
    defer_output(delivery, filter_from, false);
    delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    return true;
  }
  if (!run_out_filters(stanza, filter_from)) return true;
  return write_now(std::move(stanza));
}

bool Session::send_stanza(xml::Element&& stanza) { return write_stanza(std::move(stanza), 0); }

bool Session::send_after(xml::Element&& stanza, parley_module* after) {
  const std::vector<HookEntry>* hooks =
      loop_.modules ? loop_.modules->hooks_for(PARLEY_EVENT_STANZA_OUT, host_) : nullptr;
  return write_stanza(std::move(stanza), hooks ? hook_position_after(*hooks, after) : 0);
}

bool Session::send_tracked(xml::Element&& stanza, parley_module* owner, parley_sent_fn done, void* arg) {
  if (state_ != State::bound || !stream_ || stream_->closing()) return false;
  // While modules are swapped the filters cannot run: not accepted now (the
  // sender keeps it, as for a session that is busy, and sends it again later).
  if (loop_.module_pause.active() && has_output_hooks()) [[unlikely]] return false;
  // A filter that takes it (held by client state indication, say) owns it:
  // the send completes as written, with nothing of its own on the socket.
  if (!run_out_filters(stanza, 0)) return stream_->connection().send_tracked({}, owner, done, arg);
  xml::SerializeContext sctx;
  sctx.default_ns = ns::client;
  std::string bytes = xml::serialize(stanza, sctx);
  if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, false, stanza, bytes);
  return stream_->connection().send_tracked(bytes, owner, done, arg);
}

void Session::drop_tracked(parley_module* owner) {
  if (stream_) stream_->connection().drop_tracked(owner);
}

bool Session::write_element(const xml::Element& element) {
  if (!stream_ || state_ == State::ended) return false;
  return stream_->write_element(element);
}

// ---- input ----

void Session::process_stanza(xml::Element&& stanza) {
  if (stream_) stream_->process_stanza(std::move(stanza));
}

void Session::hold_input() {
  if (stream_) stream_->hold_input();
}

bool Session::release_input() { return stream_ && stream_->release_input(); }

void Session::end_throttle() {
  if (stream_) stream_->connection().end_throttle();
}

// ---- module slots ----

// The slots stay for the session's life and a session gets a handful (one per
// module that keeps state for it): grown one at a time rather than doubled, so
// five slots take 160 bytes, not 256 (issue 18, idle memory). A session's
// slots are made at its login, so the copies cost nothing on the stanza path.
static void add_module_slot(std::vector<Session::ModuleSlot>& slots, Session::ModuleSlot slot) {
  if (slots.size() == slots.capacity()) slots.reserve(slots.size() + 1);
  slots.push_back(slot);
}

void Session::set_module_data(parley_module* owner, void* data, void (*free_fn)(void*)) {
  for (auto& slot : module_slots_) {
    if (slot.owner != owner) continue;
    if (slot.free_fn && slot.data != data) slot.free_fn(slot.data);
    slot.data = data;
    slot.free_fn = free_fn;
    return;
  }
  add_module_slot(module_slots_, ModuleSlot{owner, data, free_fn});
}

void Session::set_filter_out(parley_module* owner, bool on) {
  for (size_t i = 0; i < module_slots_.size(); ++i) {
    ModuleSlot& slot = module_slots_[i];
    if (slot.owner != owner) continue;
    if (slot.filter_out == on) return;
    slot.filter_out = on;
    if (on) {
      ++filters_out_on_;
    } else {
      --filters_out_on_;
      // A slot that only carried the flag goes.
      if (slot.data == nullptr && slot.free_fn == nullptr)
        module_slots_.erase(module_slots_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return;
  }
  if (!on) return;
  add_module_slot(module_slots_, ModuleSlot{owner, nullptr, nullptr, true});
  ++filters_out_on_;
}

bool Session::out_filters_apply(const std::vector<HookEntry>* hooks) const {
  if (hooks == nullptr) return false;
  if (filters_out_on_ != 0) return true;
  for (const HookEntry& hook : *hooks)
    if (!hook.per_session) return true;
  return false;
}

void* Session::module_data(parley_module* owner) const {
  for (const auto& slot : module_slots_)
    if (slot.owner == owner) return slot.data;
  return nullptr;
}

void Session::drop_module_data(parley_module* owner) {
  for (size_t i = 0; i < module_slots_.size(); ++i) {
    if (module_slots_[i].owner != owner) continue;
    ModuleSlot slot = module_slots_[i];
    module_slots_.erase(module_slots_.begin() + static_cast<std::ptrdiff_t>(i));
    if (slot.filter_out) --filters_out_on_;
    if (slot.free_fn) slot.free_fn(slot.data);
    return;
  }
}

}  // namespace parley
