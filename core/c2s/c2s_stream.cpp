// The stream level of a c2s connection: stream headers, features, STARTTLS,
// stream errors and closing, and what the connection reports. SASL is in
// c2s_auth.cpp, binding, nonzas and stanzas in c2s_stanza.cpp.
#include "core/c2s/c2s_stream.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/modules/hooks.hpp"
#include "core/router/router.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/stanza/stream_id.hpp"
#include "core/tls/stream.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

// What can arrive once reading stopped: the rest of one read, decrypted (one
// TLS record more at most).
constexpr size_t kMaxPausedReadBytes = WorkerLoop::read_buffer_size + 16 * 1024;

std::string escape_attr(std::string_view value) {
  std::string out;
  xml::escape_attr_to(out, value);
  return out;
}

}  // namespace

C2sStream::C2sStream(ServerContext& ctx, LoopContext& loop, Session& session, const config::Listener& listener)
    : ctx_(ctx),
      loop_(&loop),
      session_(&session),
      listener_(listener),
      conn_(ctx, loop, session.id(), *this),
      parser_(*this, ctx.xml_limits) {}

C2sStream::~C2sStream() = default;

const std::string& C2sStream::host() const { return session_->host(); }
const Jid& C2sStream::jid() const { return session_->jid(); }

void C2sStream::start(uv_stream_t* server) {
  if (!conn_.accept(server)) return;  // closing; the session goes when it closed
  if (listener_.module == "http") conn_.use_http(listener_);
  begin_stream();
}

void C2sStream::start_without_socket(std::string peer_ip) {
  conn_.open_without_socket(std::move(peer_ip));
  begin_stream();
}

BoshSession* C2sStream::start_bosh(BoshParams&& params) {
  BoshSession* bosh = conn_.open_bosh(std::move(params));
  begin_stream();
  return state_ == State::closing ? nullptr : bosh;
}

void C2sStream::feed(std::string_view bytes) {
  if (state_ == State::closing) return;
  conn_.feed(bytes);
}

void C2sStream::begin_stream() {
  // One deadline for authentication from accept: STARTTLS and the handshake
  // may shorten the wait, never extend it (a slow client gains nothing).
  auth_deadline_s_ =
      static_cast<uint32_t>((uv_now(loop_->loop.uv()) + 999) / 1000 + ctx_.config.limits.auth_timeout);
  if (conn_.bosh()) {
    // BOSH: TLS, if any, is the HTTP connections' (XEP-0206 §10).
    arm_timer(ctx_.config.limits.auth_timeout);
  } else if (conn_.http()) {
    // HTTP first: the authentication deadline starts with the WebSocket
    // (on_connection_upgraded); until then the HTTP idle timeout holds.
    auth_deadline_s_ = UINT32_MAX;
    if (listener_.tls && !start_tls()) return;
    arm_timer(listener_.tls ? ctx_.config.limits.tls_handshake_timeout : ctx_.config.limits.http_idle_timeout);
  } else if (listener_.tls) {
    if (!start_tls()) return;
    arm_timer(ctx_.config.limits.tls_handshake_timeout);
  } else {
    arm_timer(ctx_.config.limits.auth_timeout);
  }
  conn_.start_reading();
  spdlog::debug("c2s {}: connection from {}", session_->id(), conn_.peer_ip());
}

bool C2sStream::start_tls() {
  if (!conn_.start_tls(host().empty() ? ctx_.config.hosts.front() : host())) {
    state_ = State::closing;
    return false;
  }
  state_ = State::tls_handshake;
  return true;
}

void C2sStream::on_connection_bytes(std::string_view bytes) {
  if (state_ == State::closing) return;
  if (waiting_ && waiting_->paused) {
    // The parser is paused: these come after what waits (the rest of the
    // read that was going on when reading stopped).
    if (waiting_->unparsed.size() + bytes.size() > kMaxPausedReadBytes) {
      close_with_stream_error("policy-violation", "Too much data while the input is suspended");
      return;
    }
    waiting_->unparsed.append(bytes);
    return;
  }
  feed_bytes(bytes);
}

void C2sStream::pause_parser() {
  if (!waiting_) waiting_ = std::make_unique<Waiting>();
  waiting_->paused = true;
  parser_.pause();
}

void C2sStream::feed_bytes(std::string_view bytes) {
  while (true) {
    const size_t used = parser_.feed_pausable(bytes);
    if (used >= bytes.size() || state_ == State::closing) break;
    bytes.remove_prefix(used);
    if (waiting_ && waiting_->paused) {
      waiting_->unparsed.assign(bytes);
      return;
    }
    // Paused, and the input already resumed (the outcome came at once): go on.
  }
  if (state_ == State::online) keep_parser_while_busy();
}

void C2sStream::keep_parser_while_busy() {
  // An idle online session keeps no expat parser (ARCHITECTURE.md, memory),
  // but a busy one keeps it between reads: the loop's sweep frees it once
  // the input has been quiet (idle_parser_sweep.hpp says why). "Busy" means
  // read from in two sweep periods in a row: a stream that only had one
  // burst of input (a login: bind, then initial presence, then silence)
  // gives its parser back at once. Held for a period after every login, the
  // parsers of a login storm (~10 KiB each) left their freed blocks between
  // the sessions' long-lived allocations: 6.2 instead of 4.5 KiB RSS per idle
  // plaintext session at N = 10,000 (BENCHMARKS.md, idle memory).
  const unsigned period = ctx_.config.limits.idle_parser_release;
  if (period == 0) {
    parser_.release_if_idle();
    return;
  }
  if (!parser_busy_) {
    parser_.release_if_idle();  // not when it stopped inside a stanza: the sweep retries
  } else if (!parser_.has_live_parser()) {
    return;
  }
  parser_read_ = true;
  if (parser_watched_) return;
  parser_watched_ = true;
  loop_->watch_parser(session_->id(), period);
}

bool C2sStream::sweep_parser() {
  if (state_ != State::online) {
    parser_watched_ = false;
    parser_busy_ = false;
    return false;
  }
  if (parser_read_) {
    parser_read_ = false;  // read from in this period: one more, and keep the parser from now on
    parser_busy_ = true;
    return true;
  }
  if (parser_.has_live_parser()) {
    if (!parser_.release_if_idle()) return true;  // in the middle of a stanza (a slow sender): again at the next tick
    // A busy stream quiet for a period: the parser goes, but the stream
    // stays busy for one more, so that input then keeps the new parser (one
    // re-creation, as before). Dropped at once, a stream whose reads came
    // just over a period apart re-created it for every read of the period
    // after (callgrind, 20 pairs at window 1: 5% of the messages).
    if (parser_busy_) return true;
  }
  parser_busy_ = false;
  parser_watched_ = false;
  return false;
}

void C2sStream::on_connection_secured() {
  // A fresh stream starts inside TLS (RFC 6120 §5.4.3.3).
  state_ = State::wait_stream;
  arm_timer(conn_.http() ? ctx_.config.limits.http_idle_timeout : ctx_.config.limits.auth_timeout);
}

void C2sStream::on_connection_upgraded() {
  // An XMPP WebSocket (RFC 7395): the stream starts now, and so does its
  // authentication deadline.
  auth_deadline_s_ =
      static_cast<uint32_t>((uv_now(loop_->loop.uv()) + 999) / 1000 + ctx_.config.limits.auth_timeout);
  arm_timer(ctx_.config.limits.auth_timeout);
}

void C2sStream::on_connection_message_end() {
  // RFC 7395 §3.3.3: every message is one whole element (a stanza, a nonza,
  // <open/> or <close/>): never part of one, never text.
  if (state_ == State::closing || parser_.at_stanza_boundary()) return;
  close_with_stream_error("not-well-formed", "one whole element per WebSocket message (RFC 7395)");
}

void C2sStream::on_connection_deadline() {
  if (state_ == State::online || state_ == State::closing) return;
  if (conn_.http() && !conn_.websocket()) {
    spdlog::debug("c2s {}: HTTP connection from {} idle; closing", session_->id(), conn_.peer_ip());
    abort_connection();
    return;
  }
  spdlog::info("c2s {}: {} did not authenticate in time", session_->id(), conn_.peer_ip());
  if (conn_.tls_started() && !conn_.secure()) {
    abort_connection();  // no stream to speak on yet
    return;
  }
  close_with_stream_error("connection-timeout");
}

void C2sStream::on_connection_flood() { close_with_stream_error("policy-violation", "Too much data"); }

void C2sStream::on_connection_lost() {
  abandon_migration();
  if (mechanism_) {
    mechanism_.reset();
    count_abandoned_exchange();
  }
  if (state_ == State::closing) return;
  state_ = State::closing;
  parser_.stop();
  // A bound session may outlive its connection (a module keeps it detached);
  // anything else ends here.
  if (!session_->connection_lost()) session_->end(true);
}

void C2sStream::on_unwritten(std::shared_ptr<Delivery> delivery) {
  if (orphaned_) {
    // The module that kept the session owns what the client has not
    // acknowledged (its outgoing filter saw every stanza): settled as written.
    delivery->written.store(true, std::memory_order_relaxed);
    delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  // The session left the session table: the rules for a resource that is gone.
  ctx_.router->reroute_unwritten(std::move(delivery), loop_->loop.index());
}

void C2sStream::on_connection_closed() {
  abandon_migration();
  // Nothing refers to the connection any more. Last statements: either frees
  // this stream.
  if (orphaned_) {
    loop_->orphan_streams.erase(this);
    return;
  }
  // The session decides whether this stream (and with a session that ended,
  // itself) goes.
  session_->stream_closed(this);
}

void C2sStream::send_stream_header() {
  if (header_sent_) return;
  header_sent_ = true;
  stream_id_ = make_stream_id(12);
  std::string header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' id='";
  header += stream_id_;
  header += "' from='";
  header += escape_attr(host().empty() ? ctx_.config.hosts.front() : host());
  header += "' version='1.0' xml:lang='en'>";
  send(header);
}

void C2sStream::on_stream_open(const xml::StreamHeader& header) {
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
  if (known && (host().empty() || host() == requested)) session_->set_host(requested);
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
  if (!known || host() != requested) {
    close_with_stream_error("host-unknown");
    return;
  }
  state_ = authenticated_ ? State::bind : State::negotiating;
  session_->announce();
  send_features();
}

namespace {

// (issue 16) What modules add to a stream's features (PARLEY_EVENT_STREAM_FEATURES:
// mod_pep's XEP-0115 <c/> of the server), serialized; empty when no module hooks it.
std::string module_stream_features(LoopContext& loop, std::string_view host, SessionId session) {
  if (!loop.modules || loop.modules->hooks_for(PARLEY_EVENT_STREAM_FEATURES, host) == nullptr) return {};
  xml::Element acc("features", std::string(xml::kStreamsNs));
  parley_event_args args{};
  args.session = session;
  args.acc = reinterpret_cast<parley_element*>(&acc);
  args.host = to_pstr(host);
  run_hooks(*loop.modules, PARLEY_EVENT_STREAM_FEATURES, host, args, &loop.module_pause);
  std::string out;
  for (const xml::Element* child : acc.children()) xml::serialize_to(out, *child, {xml::kStreamsNs, true});
  return out;
}

}  // namespace

void C2sStream::send_features() {
  std::string features = "<stream:features>";
  if (!authenticated_) {
    // Over WebSocket the TLS is the connection's (wss): no STARTTLS (RFC 7395 §3.1).
    bool can_starttls = !conn_.secure() && !conn_.tls_started() && !conn_.http() && !conn_.bosh();
    if (can_starttls) {
      features += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>";
      if (listener_.starttls_required) features += "<required/>";
      features += "</starttls>";
    }
    if (conn_.secure() || !listener_.starttls_required) {
      features += advertised_mechanisms_xml();
      // Pre-auth iqs carry passwords (registration): where PLAIN is (c2s_stanza.cpp).
      if (conn_.secure() || listener_.allow_plain_without_tls) features += loop_->modules->preauth_features_for(host());
    }
  } else {
    features += "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>";
    // RFC 6121 dropped session establishment; old clients still ask (RFC 3921).
    features += "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>";
    features += loop_->modules->session_features_for(host());
  }
  features += module_stream_features(*loop_, host(), session_->id());
  features += "</stream:features>";
  send(features);
}

void C2sStream::on_stanza(xml::Element&& element) {
  if (state_ == State::closing) return;
  if (input_suspended_) {
    if (!waiting_) waiting_ = std::make_unique<Waiting>();
    waiting_->elements.push_back(std::move(element));
    return;
  }
  // What may enter module code (a bound client's stanza or nonza, a nonza
  // instead of binding, a pre-auth iq) waits while modules are swapped;
  // negotiation itself goes on.
  if (loop_->module_pause.active() &&
      (state_ == State::online || state_ == State::bind ||
       (state_ == State::negotiating && element.name() == "iq"))) [[unlikely]] {
    wait_for_modules(std::move(element));
    return;
  }
  if (stanza_log_enabled()) [[unlikely]] log_stanza(session_->id(), true, element);
  loop_->metrics.stanzas_in.add();
  switch (state_) {
    case State::wait_stream:
    case State::tls_handshake:
    case State::closing:
      return;
    case State::negotiating:
    case State::authenticating:
      if (element.xmlns() == ns::tls && element.name() == "starttls") {
        if (conn_.secure() || conn_.tls_started() || conn_.http() || conn_.bosh() || state_ != State::negotiating) {
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
      if (element.xmlns() == ns::stream_management && (element.name() == "enable" || element.name() == "resume")) {
        // XEP-0198 §6: an error with an <enable/> or a <resume/> MUST be answered
        // <failed/>, and before authentication there is no session to enable or
        // take over (§3, §5). The stream goes on: the client may still log in.
        send("<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
             "</failed>");
        return;
      }
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

void C2sStream::on_stream_close() {
  // Stanzas before it wait (a module's hold, a reload): the close comes after
  // them, as on the wire, once they ran (resume_input).
  if (input_suspended_) {
    close_after_input_ = true;
    return;
  }
  // The peer closed its stream: answer in kind (RFC 6120 §4.4).
  close_stream();
}

void C2sStream::on_parse_error(xml::ParseError error, std::string_view detail) {
  close_with_stream_error(xml::condition_name(error), {}, detail);
}

void C2sStream::close_with_stream_error(std::string_view condition, std::string_view text,
                                        std::string_view log_detail) {
  if (state_ == State::closing) return;
  // Every stream error, with its condition: what an operator looks for when a
  // client says it was disconnected.
  // issue 17: key=value, greppable, and split into fields by log_format: json.
  if (log_detail.empty() && text.empty())
    spdlog::info("event=stream_error session={} condition={} ip={}", session_->id(), condition, conn_.peer_ip());
  else
    spdlog::info("event=stream_error session={} condition={} ip={} detail={}", session_->id(), condition,
                 conn_.peer_ip(), log_value(log_detail.empty() ? text : log_detail));
  loop_->metrics.stream_errors.add();
  if (!(conn_.tls_started() && !conn_.secure())) {
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

void C2sStream::close_stream() {
  if (state_ == State::closing) return;
  // Modules may write their last words first (ABI 1.12: mod_stream_mgmt's <a/>).
  if (session_->state() == Session::State::bound) session_->run_hook(PARLEY_EVENT_STREAM_CLOSING, nullptr);
  if (state_ == State::closing) return;  // a hook's write failed and ended the stream
  if (!(conn_.tls_started() && !conn_.secure())) {
    if (!header_sent_) send_stream_header();
    send("</stream:stream>");
  }
  begin_close();
}

void C2sStream::close_orphaned(std::string_view condition) {
  if (state_ == State::closing || !orphaned_) return;
  if (!(conn_.tls_started() && !conn_.secure())) {
    if (!header_sent_) send_stream_header();
    if (condition.empty()) {
      send("</stream:stream>");
    } else {
      spdlog::info("event=stream_error session={} condition={} ip={} detail=\"session detached\"", session_->id(),
                   condition, conn_.peer_ip());
      loop_->metrics.stream_errors.add();
      std::string error = "<stream:error><";
      error += condition;
      error += " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";
      send(error);
    }
  }
  state_ = State::closing;
  parser_.stop();
  conn_.close_after_flush();
}

void C2sStream::begin_close() {
  if (state_ == State::closing) return;
  if (mechanism_) {
    // An exchange left half-way counts against the address (c2s_auth.cpp).
    mechanism_.reset();
    count_abandoned_exchange();
  }
  state_ = State::closing;
  parser_.stop();
  // A stream that ends (closed by either side, or a stream error) ends its
  // session: nothing to resume.
  session_->end();
  conn_.close_after_flush();
}

void C2sStream::abort_connection() {
  if (mechanism_) {
    mechanism_.reset();
    count_abandoned_exchange();
  }
  if (state_ != State::closing) {
    state_ = State::closing;
    parser_.stop();
    session_->end();
  }
  conn_.abort();
}

void C2sStream::send(std::string_view xml) {
  if (state_ == State::closing && conn_.closing()) return;
  conn_.send(xml);
}

bool C2sStream::write(std::string_view bytes) {
  if (state_ == State::closing || state_ == State::wait_stream || !header_sent_) return false;
  conn_.send(bytes);
  return !conn_.closing();
}

bool C2sStream::write_element(const xml::Element& element) {
  if (state_ == State::closing || state_ == State::wait_stream || !header_sent_) return false;
  return send_element(element);
}

bool C2sStream::send_element(const xml::Element& element) {
  xml::SerializeContext sctx;
  sctx.default_ns = ns::client;
  std::string bytes = xml::serialize(element, sctx);
  if (stanza_log_enabled()) [[unlikely]] log_stanza(session_->id(), false, element, bytes);
  if (state_ == State::closing) return false;
  conn_.send(bytes);
  return !conn_.closing();
}

void C2sStream::arm_timer(unsigned seconds) {
  if (seconds == 0) {
    conn_.disarm_deadline();
    return;
  }
  uint64_t now = uv_now(loop_->loop.uv());
  uint64_t deadline = static_cast<uint64_t>(auth_deadline_s_) * 1000;
  uint64_t left = deadline > now ? deadline - now : 0;
  conn_.arm_deadline(std::min<uint64_t>(static_cast<uint64_t>(seconds) * 1000, left));
}

void C2sStream::hold_input() {
  if (module_holds_ == UINT8_MAX) return;  // a module leaking holds; the input stays held either way
  ++module_holds_;
  suspend_input();
}

bool C2sStream::release_input() {
  if (module_holds_ == 0) return false;
  if (--module_holds_ == 0) resume_input();
  return true;
}

void C2sStream::suspend_input() {
  if (input_suspended_) return;
  input_suspended_ = true;
  conn_.suspend_reading();
}

void C2sStream::resume_input() {
  if (!input_suspended_ || state_ == State::closing || attach_pending_) return;
  input_suspended_ = false;
  while (waiting_ && !waiting_->elements.empty() && !input_suspended_ && state_ != State::closing) {
    xml::Element next = std::move(waiting_->elements.front());
    waiting_->elements.pop_front();
    on_stanza(std::move(next));
  }
  if (waiting_ && waiting_->paused && !input_suspended_ && state_ != State::closing) {
    waiting_->paused = false;
    std::string rest = std::move(waiting_->unparsed);
    waiting_->unparsed.clear();
    std::string_view bytes = rest;
    if (state_ == State::wait_stream) {
      // Whitespace the client sent after its <auth/> belonged to the old
      // stream (keepalives between elements); the new document starts at
      // its header, perhaps with an XML declaration, which nothing may precede.
      bytes.remove_prefix(std::min(bytes.size(), bytes.find_first_not_of(" \t\r\n")));
    }
    if (!bytes.empty()) feed_bytes(bytes);  // may pause again, keeping what follows
  }
  if (waiting_ && waiting_->elements.empty() && !waiting_->paused && waiting_->unparsed.empty()) waiting_.reset();
  if (close_after_input_ && !input_suspended_ && state_ != State::closing) {
    close_after_input_ = false;
    close_stream();
    return;
  }
  if (!input_suspended_) conn_.resume_reading();
}

// ---- re-attach ----

void C2sStream::begin_attach() {
  attach_pending_ = true;
  suspend_input();
}

void C2sStream::cancel_attach() {
  if (!attach_pending_) return;
  attach_pending_ = false;
  resume_input();
}

void C2sStream::finish_attach() {
  attach_pending_ = false;
  resume_input();
}

bool C2sStream::migrate_to(unsigned loop, Arrive arrive, std::function<void()> abandon) {
  if (state_ == State::closing || migration_) return false;
  migration_ = std::make_unique<Migration>(Migration{loop, std::move(arrive), std::move(abandon)});
  if (!conn_.migrate_out()) {
    migration_.reset();
    return false;
  }
  return true;
}

void C2sStream::abandon_migration() {
  if (!migration_) return;
  auto abandon = std::move(migration_->abandon);
  migration_.reset();
  if (abandon) abandon();
}

void C2sStream::on_connection_migrating() {
  // The socket is released on this loop: leave the stream's own session
  // (it ends, never bound) and travel to the session being resumed.
  std::unique_ptr<Migration> migration = std::move(migration_);
  Session* own = session_;
  LoopContext* here = loop_;
  std::unique_ptr<C2sStream> owned = own->release_stream();
  own->end();
  here->sessions.erase(own->id());
  // A task must be copyable: the stream travels as a raw pointer, owned again
  // on arrival (a loop that never runs it again is shutting down).
  C2sStream* raw = owned.release();
  ctx_.loops[migration->loop]->loop.post([raw, arrive = std::move(migration->arrive)] {
    arrive(std::unique_ptr<C2sStream>(raw));
  });
}

void C2sStream::rebind(LoopContext& loop, Session& session, bool) {
  loop_ = &loop;
  session_ = &session;
  conn_.set_log_id(session.id());
  state_ = State::online;
  orphaned_ = false;
  // Watched (if at all) by the loop and under the session it came from.
  parser_watched_ = false;
  parser_read_ = false;
  if (parser_.has_live_parser()) keep_parser_while_busy();
}

}  // namespace parley
