// The connection and stream level of a c2s session: bytes in, TLS, stream
// headers, features, stream errors and closing. The write path is in
// c2s_write.cpp, SASL in c2s_auth.cpp, binding and stanzas in c2s_stanza.cpp.
#include "core/c2s/c2s_session.hpp"

#include "core/c2s/c2s_backlog.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/modules/module_instance.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/tls/stream.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {



std::string make_stream_id() {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string raw = sasl::random_bytes(12);
  std::string id;
  id.reserve(raw.size());
  for (unsigned char c : raw) id.push_back(digits[c % 36]);
  return id;
}

std::string escape_attr(std::string_view value) {
  std::string out;
  xml::escape_attr_to(out, value);
  return out;
}

}  // namespace


C2sSession::C2sSession(ServerContext& ctx, LoopContext& loop, SessionId id, const config::Listener& listener)
    : ctx_(ctx), loop_(loop), id_(id), listener_(listener), parser_(*this, ctx.xml_limits) {
  tcp_.data = this;
  timer_.data = this;
  loop_.metrics.connections_open.add(1);
}

C2sSession::~C2sSession() {
  if (backlog_) {
    // Only at shutdown (the loops stopped with the handle open): no
    // completion runs any more; the counts are settled.
    for (auto& t : backlog_->tracked) forget_tracked_send(*t.owner);
    for (auto& h : backlog_->held) h.delivery->outstanding.fetch_sub(1);
  }
  for (auto& slot : module_slots_)
    if (slot.free_fn) slot.free_fn(slot.data);
  loop_.metrics.connections_open.add(-1);
  if (counted_ip_) ctx_.connections.remove(peer_ip_);
}

void C2sSession::start(uv_stream_t* server) {
  uv_tcp_init(loop_.loop.uv(), &tcp_);
  ++open_handles_;
  uv_timer_init(loop_.loop.uv(), &timer_);
  ++open_handles_;
  loop_.metrics.connections_accepted.add();

  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    abort_connection();
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);

  sockaddr_storage addr{};
  int len = sizeof(addr);
  char ip[INET6_ADDRSTRLEN] = "unknown";
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    if (addr.ss_family == AF_INET)
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof(ip));
    else
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), ip, sizeof(ip));
  }
  peer_ip_ = ip;
  if (!ctx_.connections.try_add(peer_ip_, ctx_.config.limits.max_connections_per_ip)) {
    spdlog::info("c2s {}: refusing connection from {}: too many connections", id_, peer_ip_);
    abort_connection();
    return;
  }
  counted_ip_ = true;
  begin_stream();
}

void C2sSession::begin_stream() {
  // One deadline for authentication from accept: STARTTLS and the handshake
  // may shorten the wait, never extend it (a slow client gains nothing).
  auth_deadline_s_ = static_cast<uint32_t>((uv_now(loop_.loop.uv()) + 999) / 1000 + ctx_.config.limits.auth_timeout);
  if (listener_.tls) {
    if (!start_tls()) return;
    arm_timer(ctx_.config.limits.tls_handshake_timeout);
  } else {
    arm_timer(ctx_.config.limits.auth_timeout);
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &C2sSession::on_alloc, &C2sSession::on_read);
  spdlog::debug("c2s {}: connection from {}", id_, peer_ip_);
}

C2sSession::OutputTap C2sSession::output_tap_ = nullptr;

void C2sSession::set_output_tap(OutputTap tap) { output_tap_ = tap; }

void C2sSession::start_detached(std::string peer_ip) {
  uv_tcp_init(loop_.loop.uv(), &tcp_);  // never connected: reads never come, writes go to the tap
  ++open_handles_;
  uv_timer_init(loop_.loop.uv(), &timer_);
  ++open_handles_;
  loop_.metrics.connections_accepted.add();
  peer_ip_ = std::move(peer_ip);
  begin_stream();
}

void C2sSession::feed_detached(std::string_view bytes) {
  if (state_ == State::closing) return;
  handle_bytes(bytes);
}

bool C2sSession::start_tls() {
  tls_store_ = ctx_.tls_store();
  if (!tls_store_) {
    abort_connection();
    return false;
  }
  auto stream = tls::Stream::server(*tls_store_, host_.empty() ? ctx_.config.hosts.front() : host_);
  if (!stream) {
    spdlog::error("c2s {}: cannot start TLS: {}", id_, stream.error());
    abort_connection();
    return false;
  }
  tls_ = std::move(*stream);
  state_ = State::tls_handshake;
  return true;
}

void C2sSession::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<C2sSession*>(handle->data);
  buf->base = self->loop_.loop.read_buffer();
  buf->len = WorkerLoop::read_buffer_size;
}

void C2sSession::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<C2sSession*>(stream->data);
  if (nread == 0) return;
  if (nread < 0) {
    // EOF or reset: an abrupt end. Nothing more can be said to the peer.
    self->abort_connection();
    return;
  }
  if (!self->within_rate(static_cast<size_t>(nread))) return;
  self->handle_bytes(std::string_view(buf->base, static_cast<size_t>(nread)));
}

bool C2sSession::within_rate(size_t bytes) {
  const int64_t rate = static_cast<int64_t>(ctx_.config.limits.max_bytes_per_second);
  if (rate == 0) return true;
  uint64_t now = uv_now(loop_.loop.uv());
  if (rate_checked_ms_ == 0) rate_budget_ = rate;  // a full bucket to start with
  rate_budget_ = std::min<int64_t>(rate, rate_budget_ + static_cast<int64_t>(now - rate_checked_ms_) * rate / 1000);
  rate_checked_ms_ = now;
  rate_budget_ -= static_cast<int64_t>(bytes);
  if (rate_budget_ >= 0) return true;
  // Over the rate: these bytes are handled, then reading waits until the debt
  // is paid. A client that keeps pushing anyway (more than five seconds of
  // debt: it cannot be reading our flow control) is cut off.
  int64_t debt = -rate_budget_;
  if (debt > 5 * rate) {
    spdlog::info("c2s {}: {} exceeds {} bytes/s; closing", id_, peer_ip_, rate);
    close_with_stream_error("policy-violation", "Too much data");
    return false;
  }
  throttled_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  loop_.throttle(id_, now + static_cast<uint64_t>(debt * 1000 / rate) + 1);
  return true;
}

void C2sSession::set_module_data(parley_module* owner, void* data, void (*free_fn)(void*)) {
  for (auto& slot : module_slots_) {
    if (slot.owner != owner) continue;
    if (slot.free_fn && slot.data != data) slot.free_fn(slot.data);
    slot.data = data;
    slot.free_fn = free_fn;
    return;
  }
  module_slots_.push_back(ModuleSlot{owner, data, free_fn});
}

void* C2sSession::module_data(parley_module* owner) const {
  for (const auto& slot : module_slots_)
    if (slot.owner == owner) return slot.data;
  return nullptr;
}

void C2sSession::drop_module_data(parley_module* owner) {
  for (size_t i = 0; i < module_slots_.size(); ++i) {
    if (module_slots_[i].owner != owner) continue;
    ModuleSlot slot = module_slots_[i];
    module_slots_.erase(module_slots_.begin() + static_cast<std::ptrdiff_t>(i));
    if (slot.free_fn) slot.free_fn(slot.data);
    return;
  }
}

void C2sSession::end_throttle() {
  throttled_ = false;
  start_reading();
}

void C2sSession::hold_input() {
  if (module_holds_ == UINT8_MAX) return;  // a module leaking holds; the input stays held either way
  ++module_holds_;
  suspend_input();
}

bool C2sSession::release_input() {
  if (module_holds_ == 0) return false;
  if (--module_holds_ == 0) resume_input();
  return true;
}

bool C2sSession::send_direct(const xml::Element& stanza) {
  if (state_ == State::closing || state_ == State::wait_stream || !header_sent_) return false;
  send_element(stanza);
  return state_ != State::closing;
}

void C2sSession::start_reading() {
  if (state_ == State::closing || throttled_ || input_suspended_) return;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &C2sSession::on_alloc, &C2sSession::on_read);
}

void C2sSession::handle_bytes(std::string_view bytes) {
  if (state_ == State::closing) return;
  if (!tls_) {
    parser_.feed(bytes);
  } else {
    std::string& plaintext = loop_.loop.scratch_plaintext();
    std::string& outgoing = loop_.loop.scratch_outgoing();
    plaintext.clear();
    outgoing.clear();
    bool was_done = tls_->handshake_done();
    auto fed = tls_->feed(bytes, plaintext, outgoing);
    if (!outgoing.empty()) write_raw(outgoing);
    if (!fed) {
      spdlog::info("c2s {}: TLS error from {}: {}", id_, peer_ip_, fed.error());
      abort_connection();
      return;
    }
    if (!was_done && tls_->handshake_done()) {
      // A fresh stream starts inside TLS (RFC 6120 §5.4.3.3).
      secure_ = true;
      state_ = State::wait_stream;
      tls_store_.reset();
      arm_timer(ctx_.config.limits.auth_timeout);
    }
    if (tls_->peer_closed()) {
      abort_connection();
      return;
    }
    if (!plaintext.empty()) {
      // Parser callbacks may send, which reuses the loop's scratch buffers:
      // parse from a buffer of our own.
      std::string data;
      data.swap(plaintext);
      parser_.feed(data);
      if (plaintext.empty()) {
        data.clear();
        plaintext.swap(data);  // give the capacity back to the loop
      }
    }
  }
  // An idle online session keeps no expat parser (ARCHITECTURE.md, memory).
  if (state_ == State::online) parser_.release_if_idle();
}

void C2sSession::send_stream_header() {
  if (header_sent_) return;
  header_sent_ = true;
  stream_id_ = make_stream_id();
  std::string header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' id='";
  header += stream_id_;
  header += "' from='";
  header += escape_attr(host_.empty() ? ctx_.config.hosts.front() : host_);
  header += "' version='1.0' xml:lang='en'>";
  send(header);
}

void C2sSession::on_stream_open(const xml::StreamHeader& header) {
  if (state_ != State::wait_stream) {
    close_with_stream_error("bad-format");
    return;
  }
  // Settle the host first: our header names it, even when we refuse.
  std::string_view to = header.attr("to");
  std::string requested;
  if (!to.empty()) {
    auto domain = nameprep_domain(to);
    requested = domain ? *domain : std::string(to);
  } else if (ctx_.hosts.size() == 1) {
    requested = *ctx_.hosts.begin();
  }
  bool known = ctx_.is_local_host(requested);
  if (known && (host_.empty() || host_ == requested)) host_ = requested;
  send_stream_header();

  if (header.name != "stream" || header.xmlns != ns::streams) {
    close_with_stream_error("invalid-namespace");
    return;
  }
  if (header.default_xmlns != ns::client) {
    close_with_stream_error("invalid-namespace");
    return;
  }
  // RFC 6120 §4.7.5: no version means 0.9; we speak 1.x only.
  std::string_view version = header.attr("version");
  size_t dot = version.find('.');
  if (version.empty() || dot == std::string_view::npos || version.substr(0, dot) != "1") {
    close_with_stream_error("unsupported-version");
    return;
  }
  if (!known || host_ != requested) {
    close_with_stream_error("host-unknown");
    return;
  }
  state_ = authenticated_ ? State::bind : State::negotiating;
  if (!announced_) {
    announced_ = true;
    run_session_hook(PARLEY_EVENT_SESSION_OPENED, nullptr);
  }
  send_features();
}

void C2sSession::send_features() {
  std::string features = "<stream:features>";
  if (!authenticated_) {
    bool can_starttls = !secure_ && !tls_;
    if (can_starttls) {
      features += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>";
      if (listener_.starttls_required) features += "<required/>";
      features += "</starttls>";
    }
    if (secure_ || !listener_.starttls_required) {
      features += advertised_mechanisms_xml();
      // Pre-auth iqs carry passwords (registration): where PLAIN is (c2s_stanza.cpp).
      if (secure_ || listener_.allow_plain_without_tls) features += loop_.modules->preauth_features_for(host_);
    }
  } else {
    features += "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>";
    // RFC 6121 dropped session establishment; old clients still ask (RFC 3921).
    features += "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>";
    features += loop_.modules->session_features_for(host_);
  }
  features += "</stream:features>";
  send(features);
}

void C2sSession::on_stanza(xml::Element&& element) {
  if (state_ == State::closing) return;
  if (input_suspended_) {
    if (!deferred_) deferred_ = std::make_unique<std::deque<xml::Element>>();
    deferred_->push_back(std::move(element));
    return;
  }
  // What may enter module code (a bound client's stanza, a pre-auth iq)
  // waits while modules are swapped; negotiation itself goes on.
  if (loop_.module_pause.active() &&
      (state_ == State::online || (state_ == State::negotiating && element.name() == "iq"))) [[unlikely]] {
    wait_for_modules(std::move(element));
    return;
  }
  if (stanza_log_enabled()) [[unlikely]] log_stanza(id_, true, element);
  loop_.metrics.stanzas_in.add();
  switch (state_) {
    case State::wait_stream:
    case State::tls_handshake:
    case State::closing:
      return;
    case State::negotiating:
    case State::authenticating:
      if (element.xmlns() == ns::tls && element.name() == "starttls") {
        if (secure_ || tls_ || state_ != State::negotiating) {
          send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
          begin_close();
          return;
        }
        send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        // Plaintext after <starttls/> is never processed (STARTTLS injection).
        parser_.reset(true);
        header_sent_ = false;
        if (start_tls()) arm_timer(ctx_.config.limits.tls_handshake_timeout);
        return;
      }
      if (element.xmlns() == ns::sasl) {
        handle_sasl(std::move(element));
        return;
      }
      if (state_ == State::negotiating && element.name() == "iq" && handle_preauth_iq(element)) return;
      // RFC 6120 §4.9.3.17: nothing but negotiation before authentication.
      close_with_stream_error("not-authorized");
      return;
    case State::bind:
      handle_bind_state(std::move(element));
      return;
    case State::online:
      handle_stanza(std::move(element));
      return;
  }
}

void C2sSession::on_stream_close() {
  // Stanzas before it wait (a module's hold, a reload): the close comes after
  // them, as on the wire, once they ran (resume_input).
  if (input_suspended_) {
    close_after_input_ = true;
    return;
  }
  // The peer closed its stream: answer in kind (RFC 6120 §4.4).
  close_stream();
}

void C2sSession::on_parse_error(xml::ParseError error, std::string_view detail) {
  close_with_stream_error(xml::condition_name(error), {}, detail);
}

void C2sSession::close_with_stream_error(std::string_view condition, std::string_view text,
                                         std::string_view log_detail) {
  if (state_ == State::closing) return;
  // Every stream error, with its condition: what an operator looks for when a
  // client says it was disconnected.
  if (log_detail.empty())
    spdlog::info("c2s {}: stream error {} to {}{}{}", id_, condition, peer_ip_, text.empty() ? "" : ": ", text);
  else
    spdlog::info("c2s {}: stream error {} to {} ({})", id_, condition, peer_ip_, log_detail);
  loop_.metrics.stream_errors.add();
  if (!(tls_ && !tls_->handshake_done())) {
    if (!header_sent_) send_stream_header();
    std::string error = "<stream:error><";
    error += condition;
    error += " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>";
    if (!text.empty()) {
      error += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>";
      xml::escape_text_to(error, text);
      error += "</text>";
    }
    error += "</stream:error></stream:stream>";
    send(error);
  }
  begin_close();
}

void C2sSession::close_stream() {
  if (state_ == State::closing) return;
  if (!(tls_ && !tls_->handshake_done())) {
    if (!header_sent_) send_stream_header();
    send("</stream:stream>");
  }
  begin_close();
}

void C2sSession::begin_close() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  parser_.stop();
  leave_session_table();
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_timer_stop(&timer_);
  if (tls_ && tls_->handshake_done()) {
    std::string& outgoing = loop_.loop.scratch_outgoing();
    outgoing.clear();
    tls_->close_notify(outgoing);
    write_raw(outgoing);
  }
  shutdown_requested_ = true;
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
  // uv_shutdown waits for queued writes, so the stream error reaches the peer.
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &C2sSession::on_shutdown) != 0) {
    delete req;
    abort_connection();
  }
}

void C2sSession::on_shutdown(uv_shutdown_t* req, int) {
  auto* self = static_cast<C2sSession*>(req->data);
  delete req;
  self->abort_connection();
}

void C2sSession::abort_connection() {
  if (mechanism_) {
    mechanism_.reset();
    count_abandoned_exchange();
  }
  if (state_ != State::closing) {
    state_ = State::closing;
    parser_.stop();
    leave_session_table();
  }
  auto* tcp = reinterpret_cast<uv_handle_t*>(&tcp_);
  auto* timer = reinterpret_cast<uv_handle_t*>(&timer_);
  if (tcp->loop != nullptr && !uv_is_closing(tcp)) {
    uv_close(tcp, &C2sSession::on_close);
    finish_backlog();
  }
  if (timer->loop != nullptr && !uv_is_closing(timer)) uv_close(timer, &C2sSession::on_close);
}

void C2sSession::on_close(uv_handle_t* handle) {
  auto* self = static_cast<C2sSession*>(handle->data);
  // Every write callback has run: the backlog is no longer referred to.
  if (handle == reinterpret_cast<uv_handle_t*>(&self->tcp_)) self->backlog_.reset();
  if (--self->open_handles_ > 0) return;
  // The last handle is closed: nothing refers to this session any more.
  self->loop_.sessions.erase(self->id_);
}

void C2sSession::arm_timer(unsigned seconds) {
  if (seconds == 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(loop_.loop.uv());
  uint64_t deadline = static_cast<uint64_t>(auth_deadline_s_) * 1000;
  uint64_t left = deadline > now ? deadline - now : 0;
  uv_timer_start(&timer_, &C2sSession::on_timer, std::min<uint64_t>(static_cast<uint64_t>(seconds) * 1000, left), 0);
}

void C2sSession::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<C2sSession*>(timer->data);
  if (self->state_ == State::online || self->state_ == State::closing) return;
  spdlog::info("c2s {}: {} did not authenticate in time", self->id_, self->peer_ip_);
  if (self->tls_ && !self->tls_->handshake_done()) {
    self->abort_connection();  // no stream to speak on yet
    return;
  }
  self->close_with_stream_error("connection-timeout");
}

void C2sSession::suspend_input() {
  if (input_suspended_) return;
  input_suspended_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void C2sSession::resume_input() {
  if (!input_suspended_ || state_ == State::closing) return;
  input_suspended_ = false;
  while (deferred_ && !deferred_->empty() && !input_suspended_ && state_ != State::closing) {
    xml::Element next = std::move(deferred_->front());
    deferred_->pop_front();
    on_stanza(std::move(next));
  }
  if (deferred_ && deferred_->empty()) deferred_.reset();
  if (close_after_input_ && !input_suspended_ && state_ != State::closing) {
    close_after_input_ = false;
    close_stream();
    return;
  }
  start_reading();
}

}  // namespace parley
