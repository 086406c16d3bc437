#include "core/component/component_stream.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/addr/prep.hpp"
#include "core/component/component_directory.hpp"
#include "core/router/router.hpp"
#include "core/sasl/crypto.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_errors.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/stanza/stanza_rules.hpp"
#include "core/stanza/stream_id.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

bool is_stanza_name(std::string_view name) { return name == "message" || name == "presence" || name == "iq"; }

// The stanza enters the route table as a client's does: what the component
// wrote in its stream's default namespace is jabber:client from here on (the
// serializer then writes it without xmlns to clients, and, back on a
// component stream, in that stream's default namespace again).
void to_client_namespace(xml::Element& element) {
  if (element.xmlns() == kComponentNs) element.set_xmlns(std::string(ns::client));
  for (xml::Element* child : element.children()) to_client_namespace(*child);
}

// What a component cannot take is answered, except an error or an iq result
// (RFC 6120 §8.3.1: never an error for those).
void answer_undelivered(ServerContext& ctx, const xml::Element& stanza, std::string_view condition, unsigned loop,
                        std::string_view text) {
  std::string_view type = stanza.attr("type");
  if (stanza.name() == "iq" && type != "get" && type != "set") return;
  ctx.router->bounce(stanza, condition, loop, text);
}

constexpr std::string_view kNotConnected = "The component is not connected";

}  // namespace

ComponentStream::ComponentStream(ServerContext& ctx, LoopContext& loop, const config::Listener& listener,
                                 SessionId log_id)
    : ctx_(ctx),
      loop_(loop),
      listener_(listener),
      log_id_(log_id),
      conn_(ctx, loop, log_id, *this),
      parser_(*this, ctx.xml_limits) {}

ComponentStream::~ComponentStream() {
  // At shutdown the loops may stop with the stream still open: what waits
  // for it is dropped with the server.
  if (entry_ != nullptr) {
    entry_->queued.store(0, std::memory_order_relaxed);
    entry_->loop.store(-1, std::memory_order_release);
  }
}

void ComponentStream::start(uv_stream_t* server) {
  if (!conn_.accept(server)) {
    state_ = State::closing;  // the connection closes; on_connection_closed frees this stream
    return;
  }
  begin();
}

void ComponentStream::start_without_socket(std::string peer_ip) {
  conn_.open_without_socket(std::move(peer_ip));
  begin();
}

void ComponentStream::feed(std::string_view bytes) {
  if (state_ == State::closing) return;
  conn_.feed(bytes);
}

void ComponentStream::begin() {
  // The handshake within the authentication deadline of c2s.
  conn_.arm_deadline(uint64_t{ctx_.config.limits.auth_timeout} * 1000);
  conn_.start_reading();
  spdlog::debug("component {}: connection from {}", log_id_, conn_.peer_ip());
}

void ComponentStream::on_connection_bytes(std::string_view bytes) {
  if (state_ == State::closing) return;
  parser_.feed(bytes);
  if (state_ == State::online) parser_.release_if_idle();
}

void ComponentStream::send_stream_header(std::string_view from) {
  if (header_sent_) return;
  header_sent_ = true;
  stream_id_ = make_stream_id(16);
  std::string header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                       "xmlns:stream='http://etherx.jabber.org/streams' id='";
  header += stream_id_;
  if (!from.empty()) {
    header += "' from='";
    xml::escape_attr_to(header, from);
  }
  header += "'>";
  conn_.send(header);
}

void ComponentStream::on_stream_open(const xml::StreamHeader& header) {
  if (state_ != State::wait_stream) {
    close_with_stream_error("bad-format");
    return;
  }
  // XEP-0114 §3: 'to' names the component, not the server.
  std::string_view to = header.attr("to");
  auto prepared = nameprep_domain(to);
  const config::ComponentHost* host = nullptr;
  if (prepared) {
    for (const config::ComponentHost& h : listener_.component_hosts)
      if (h.domain == *prepared) host = &h;
  }
  send_stream_header(host != nullptr ? std::string_view(host->domain) : std::string_view());
  if (header.name != "stream" || header.xmlns != ns::streams || header.default_xmlns != kComponentNs) {
    close_with_stream_error("invalid-namespace");
    return;
  }
  if (host == nullptr) {
    close_with_stream_error("host-unknown");
    return;
  }
  domain_ = host->domain;
  password_ = host->password;
  state_ = State::handshake;
}

void ComponentStream::on_stanza(xml::Element&& element) {
  if (state_ == State::closing) return;
  loop_.metrics.stanzas_in.add();
  if (stanza_log_enabled()) [[unlikely]] log_stanza(log_id_, true, element);
  switch (state_) {
    case State::wait_stream:
    case State::closing:
      return;
    case State::handshake:
      if (element.name() == "handshake" && element.xmlns() == kComponentNs) {
        handle_handshake(element);
        return;
      }
      // Nothing but the handshake before it (RFC 6120 §4.9.3.17).
      close_with_stream_error("not-authorized");
      return;
    case State::online:
      handle_stanza(std::move(element));
      return;
  }
}

void ComponentStream::handle_handshake(const xml::Element& element) {
  // A secret guessed from one address: the c2s allowance per address
  // (limits.max_auth_failures_per_ip in auth_failure_window) applies, and
  // its failures count there too. Checked before the guess is.
  const config::LimitsConfig& limits = ctx_.config.limits;
  const uint64_t now = uv_now(loop_.loop.uv());
  const uint64_t window = limits.auth_failure_window * 1000ull;
  if (limits.max_auth_failures_per_ip != 0 &&
      ctx_.auth_failures.count(conn_.peer_ip(), now, window) >= limits.max_auth_failures_per_ip) {
    close_with_stream_error("policy-violation", "Too many failed handshakes from your address; try again later");
    return;
  }
  if (!component::handshake_matches(element.text(), stream_id_, password_)) {
    loop_.metrics.auth_failures.add();
    if (limits.max_auth_failures_per_ip != 0) ctx_.auth_failures.record(conn_.peer_ip(), now, window);
    spdlog::info("component {}: wrong handshake for {} from {}", log_id_, domain_, conn_.peer_ip());
    close_with_stream_error("not-authorized");
    return;
  }
  ComponentEntry* entry = ctx_.components ? ctx_.components->find(domain_) : nullptr;
  if (entry == nullptr) {  // configured on the listener, hence in the directory: never
    close_with_stream_error("internal-server-error");
    return;
  }
  // One connection per domain. As Prosody does by default (its
  // component_conflict_resolve "kick_new"): the new one is refused with
  // <conflict/>; the connected one keeps serving. A component that lost its
  // connection without the server noticing reconnects once the old one is
  // found dead (a write error, the peer's reset).
  int none = -1;
  int here = static_cast<int>(loop_.loop.index());
  if (!entry->loop.compare_exchange_strong(none, here, std::memory_order_acq_rel)) {
    spdlog::info("component {}: {} is connected already; refusing a second connection from {}", log_id_, domain_,
                 conn_.peer_ip());
    close_with_stream_error("conflict", "The component is connected already");
    return;
  }
  entry_ = entry;
  loop_.components->serving[domain_] = this;
  state_ = State::online;
  conn_.disarm_deadline();
  password_.clear();
  conn_.send("<handshake/>");
  spdlog::info("component {}: {} connected from {}", log_id_, domain_, conn_.peer_ip());
}

void ComponentStream::reply_error(const xml::Element& stanza, std::string_view condition, std::string_view text) {
  if (is_error_stanza(stanza)) return;
  std::string_view type = stanza.attr("type");
  if (stanza.name() == "iq" && type == "result") return;
  xml::Element reply = make_stanza_error(stanza, condition, text);
  // From the server (or the addressee it named), to the component.
  if (!reply.has_attr("from")) reply.set_attr("from", domain_);
  if (!reply.has_attr("to")) reply.set_attr("to", domain_);
  xml::SerializeContext sctx;
  sctx.default_ns = kComponentNs;
  conn_.send(xml::serialize(reply, sctx));
}

void ComponentStream::handle_stanza(xml::Element&& stanza) {
  if (stanza.xmlns() != kComponentNs || !is_stanza_name(stanza.name())) {
    close_with_stream_error("unsupported-stanza-type");
    return;
  }
  // XEP-0114 §3: every stanza has 'from' and 'to', and the domain of 'from'
  // is the component's.
  std::string_view from_text = stanza.attr("from");
  std::string_view to_text = stanza.attr("to");
  if (from_text.empty() || to_text.empty()) {
    reply_error(stanza, "bad-request", "A component's stanzas need 'from' and 'to' (XEP-0114)");
    return;
  }
  auto from = Jid::parse(from_text);
  if (!from || from->domain() != domain_) {
    // RFC 6120 §4.9.3.9, as ejabberd and Prosody answer it.
    close_with_stream_error("invalid-from", "'from' must be at " + domain_);
    return;
  }
  auto to = Jid::parse(to_text);
  if (!to) {
    reply_error(stanza, "jid-malformed");
    return;
  }
  if ((stanza.name() == "iq" && !valid_iq(stanza)) || !valid_presence_type(stanza)) {
    reply_error(stanza, "bad-request");
    return;
  }
  to_client_namespace(stanza);
  // Prepared forms on the wire, as for a client's stanza.
  stanza.set_attr("from", from->full());
  stanza.set_attr("to", to->full());
  ctx_.router->route(std::move(stanza), *from, *to, loop_.loop.index());
}

void ComponentStream::enqueue(std::shared_ptr<Delivery> delivery) {
  unsigned loop = loop_.loop.index();
  if (state_ != State::online) {
    answer_undelivered(ctx_, delivery->stanza, "service-unavailable", loop, kNotConnected);
    return;
  }
  const auto& limits = ctx_.config.limits;
  if (queue_.empty() && conn_.pending_write_bytes() < kWriteWindow) {
    write_delivery(delivery);
    return;
  }
  if (queue_.size() >= limits.max_component_queue ||
      queue_bytes_ + delivery->bytes.size() > limits.max_component_queue_bytes) {
    entry_->refused_full.store(entry_->refused_full.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    answer_undelivered(ctx_, delivery->stanza, "resource-constraint", loop, "The component's queue is full");
    return;
  }
  queue_bytes_ += delivery->bytes.size();
  queue_.push_back(std::move(delivery));
  publish_queue_length();
}

bool ComponentStream::write_delivery(const std::shared_ptr<Delivery>& delivery) {
  if (stanza_log_enabled()) [[unlikely]] log_stanza(log_id_, false, delivery->stanza, delivery->bytes);
  // The connection's hold on it (handed back through on_unwritten if the
  // connection ends before the bytes are out), as the router does for a session.
  delivery->outstanding.store(1, std::memory_order_relaxed);
  delivery->targets = 1;
  if (conn_.deliver(delivery)) {
    delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    return true;
  }
  delivery->outstanding.store(0, std::memory_order_relaxed);
  answer_undelivered(ctx_, delivery->stanza, "service-unavailable", loop_.loop.index(), kNotConnected);
  return false;
}

void ComponentStream::flush() {
  if (state_ != State::online) return;
  bool moved = false;
  while (!queue_.empty() && conn_.pending_write_bytes() < kWriteWindow && state_ == State::online) {
    std::shared_ptr<Delivery> next = std::move(queue_.front());
    queue_.pop_front();
    queue_bytes_ -= next->bytes.size();
    moved = true;
    write_delivery(next);
  }
  if (moved) publish_queue_length();
}

void ComponentStream::publish_queue_length() {
  if (entry_ != nullptr) entry_->queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
}

void ComponentStream::on_unwritten(std::shared_ptr<Delivery> delivery) {
  delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
  answer_undelivered(ctx_, delivery->stanza, "service-unavailable", loop_.loop.index(), kNotConnected);
}

void ComponentStream::release_domain() {
  if (entry_ == nullptr) return;
  auto it = loop_.components->serving.find(domain_);
  if (it != loop_.components->serving.end() && it->second == this) loop_.components->serving.erase(it);
  entry_->queued.store(0, std::memory_order_relaxed);
  entry_->loop.store(-1, std::memory_order_release);
  entry_ = nullptr;
  // Never silently lost: what waited is answered (the connection hands back
  // what it took and did not write through on_unwritten).
  std::deque<std::shared_ptr<Delivery>> waiting = std::move(queue_);
  queue_.clear();
  queue_bytes_ = 0;
  for (auto& delivery : waiting)
    answer_undelivered(ctx_, delivery->stanza, "service-unavailable", loop_.loop.index(), kNotConnected);
  spdlog::info("component {}: {} disconnected", log_id_, domain_);
}

void ComponentStream::on_stream_close() {
  if (state_ == State::closing) return;
  // The component closed its stream: answer in kind (RFC 6120 §4.4).
  conn_.send("</stream:stream>");
  begin_close();
}

void ComponentStream::on_parse_error(xml::ParseError error, std::string_view detail) {
  spdlog::debug("component {}: {}", log_id_, detail);
  close_with_stream_error(xml::condition_name(error));
}

void ComponentStream::close_with_stream_error(std::string_view condition, std::string_view text) {
  if (state_ == State::closing) return;
  spdlog::info("component {}: stream error {} to {}{}{}", log_id_, condition, conn_.peer_ip(), text.empty() ? "" : ": ",
               text);
  loop_.metrics.stream_errors.add();
  // RFC 6120 §4.7.1 (XEP-0114 §3): a header of ours first if none went out.
  if (!header_sent_) send_stream_header(domain_);
  std::string error = "<stream:error><";
  error += condition;
  error += " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>";
  if (!text.empty()) {
    error += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>";
    xml::escape_text_to(error, text);
    error += "</text>";
  }
  error += "</stream:error></stream:stream>";
  conn_.send(error);
  begin_close();
}

void ComponentStream::begin_close() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  parser_.stop();
  release_domain();
  conn_.close_after_flush();
}

void ComponentStream::on_connection_deadline() {
  if (state_ == State::online || state_ == State::closing) return;
  spdlog::info("component {}: {} did not complete the handshake in time", log_id_, conn_.peer_ip());
  close_with_stream_error("connection-timeout");
}

void ComponentStream::on_connection_flood() { close_with_stream_error("policy-violation", "Too much data"); }

void ComponentStream::on_connection_lost() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  parser_.stop();
  release_domain();
}

void ComponentStream::on_connection_closed() {
  // Last statement: frees this stream.
  loop_.components->streams.erase(this);
}

}  // namespace parley
