// SASL for a c2s session (RFC 6120 §6): SCRAM-SHA-1/-256 with and without
// channel binding, and PLAIN over TLS. Credential look-ups go to the storage
// readers; the session's input waits (suspend_input) until they come back.
//
// Pipelining (RFC 6120 §6.4): nothing the client sent after an <auth/> or a
// <response/> is processed before that step's outcome is applied. Elements
// read meanwhile wait (waiting_); after a <failure/> or <challenge/> they are
// processed in order (an <abort/> applies to the new state), after <success/>
// they are a stream error, since only a new stream header may follow it. Where
// the outcome comes later (PLAIN's key derivation) the parser is paused at the
// <auth/> instead, so what follows is read by the stream the outcome decides:
// after <success/> a pipelined stream header starts the new stream.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/c2s/c2s_stream.hpp"
#include "core/session/session.hpp"
#include "core/control/account_commands.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/tls/stream.hpp"
#include "storage/storage_pool.hpp"
#include "storage/account_store.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

using sasl::is_plus;

// The storage record a mechanism verifies against.
std::string_view record_name(sasl::Hash hash) { return hash == sasl::Hash::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

sasl::ScramCredentials to_credentials(sasl::Hash hash, const storage::ScramRecord& record) {
  return sasl::ScramCredentials{hash, record.salt, record.iterations, record.stored_key, record.server_key};
}

// What a missing account shows: the salt length and iteration count that
// account creation gives real ones.
sasl::ScramCredentials dummy_credentials(sasl::Hash hash, std::string_view username) {
  return sasl::make_dummy_credentials(hash, username, control::kScramIterations, control::kScramSaltBytes);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

bool C2sStream::offers_channel_binding() const {
  const tls::Stream* tls = conn_.tls();
  return tls && tls->handshake_done() && (!tls->tls13() || listener_.tls13_channel_binding);
}

std::string C2sStream::advertised_mechanisms_xml() const {
  std::string out = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
  const bool plus = offers_channel_binding();
  bool exporter = plus && !conn_.tls()->channel_binding_tls_exporter().empty();
  bool unique = plus && !conn_.tls()->channel_binding_tls_unique().empty();  // below TLS 1.3 only
  if (plus) {
    out += "<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>";
  }
  out += "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>";
  if (conn_.secure() || listener_.allow_plain_without_tls) out += "<mechanism>PLAIN</mechanism>";
  out += "</mechanisms>";
  if (plus) {
    // XEP-0440: which channel-binding types the -PLUS mechanisms accept here.
    out += "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>";
    if (exporter) out += "<channel-binding type='tls-exporter'/>";
    out += "<channel-binding type='tls-server-end-point'/>";
    if (unique) out += "<channel-binding type='tls-unique'/>";
    out += "</sasl-channel-binding>";
  }
  return out;
}

void C2sStream::handle_sasl(xml::Element&& element) {
  const std::string& name = element.name();
  if (name == "auth") {
    sasl_start(element);
  } else if (name == "response") {
    sasl_response(element);
  } else if (name == "abort") {
    // An abandoned exchange counts as a failure (sasl_failure), or aborting
    // after the server-first-message would probe accounts without limit.
    bool in_exchange = mechanism_.has_value();
    scram_.reset();
    mechanism_.reset();
    state_ = State::negotiating;
    if (in_exchange) {
      sasl_failure(sasl::Failure::aborted);
    } else {
      send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
    }
  } else {
    close_with_stream_error("unsupported-stanza-type");
  }
}

void C2sStream::sasl_start(const xml::Element& auth) {
  // A new <auth/> in the middle of an exchange abandons it: a failure too.
  if (mechanism_) count_abandoned_exchange();
  scram_.reset();
  mechanism_.reset();
  state_ = State::negotiating;
  if (!conn_.secure() && listener_.starttls_required) {
    sasl_failure(sasl::Failure::encryption_required);
    return;
  }
  const config::LimitsConfig& limits = ctx_.config.limits;
  if (limits.max_auth_failures_per_ip != 0 &&
      ctx_.auth_failures.count(conn_.peer_ip(), uv_now(loop_->loop.uv()), limits.auth_failure_window * 1000ull) >=
          limits.max_auth_failures_per_ip) {
    // RFC 6120 §6.5.12: temporary, so a client tries again later rather than
    // asking its user for another password.
    sasl_failure(sasl::Failure::temporary_auth_failure,
                 "Too many failed authentication attempts from your address; try again later");
    return;
  }
  auto mechanism = sasl::parse_mechanism(auth.attr("mechanism"));
  if (!mechanism || (is_plus(*mechanism) && !offers_channel_binding())) {
    sasl_failure(sasl::Failure::invalid_mechanism);
    return;
  }
  if (*mechanism == sasl::Mechanism::plain && !conn_.secure() && !listener_.allow_plain_without_tls) {
    sasl_failure(sasl::Failure::encryption_required);
    return;
  }
  mechanism_ = mechanism;
  state_ = State::authenticating;
  std::string text = auth.text();
  std::string_view data = trim(text);
  if (data.empty()) {
    // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
    send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    return;
  }
  std::string message;
  if (data != "=") {
    auto decoded = sasl::base64_decode(data);
    if (!decoded) {
      sasl_failure(sasl::Failure::incorrect_encoding);
      return;
    }
    message = std::move(*decoded);
  }
  if (*mechanism_ == sasl::Mechanism::plain) {
    sasl_plain(message);
    return;
  }

  sasl::ChannelBinding binding;
  if (const tls::Stream* tls = conn_.tls()) {
    binding.tls_exporter = tls->channel_binding_tls_exporter();
    binding.tls_server_end_point = tls->channel_binding_tls_server_end_point();
    binding.tls_unique = tls->channel_binding_tls_unique();
  }
  sasl::Hash hash = sasl::scram_hash(*mechanism_);
  scram_ = std::make_unique<sasl::ScramServer>(hash, is_plus(*mechanism_), binding, offers_channel_binding());
  auto authcid = scram_->client_first(message);
  if (!authcid) {
    sasl_failure(authcid.error());
    return;
  }
  auto user = nodeprep(*authcid);
  if (!user) {
    sasl_failure(sasl::Failure::not_authorized);
    return;
  }

  // Fetch the credentials off the loop; an unknown user gets dummy ones so the
  // exchange looks the same (no account enumeration).
  suspend_input();
  ServerContext& ctx = ctx_;
  LoopContext* loop = loop_;
  SessionId id = session_->id();
  std::string host = this->host();
  std::string username = *user;
  ctx.accounts->read([loop, id, host, username, hash](storage::AccountBackend& accounts) {
    auto record = accounts.get_credentials(host, username, record_name(hash));
    bool failed = !record;
    std::optional<storage::ScramRecord> found = failed ? std::nullopt : std::move(*record);
    if (failed)
      spdlog::error("event=storage_error what=credentials user={}@{} error={}", log_value(username), host,
                    log_value(record.error().message));
    loop->loop.post([loop, id, username, hash, failed, found = std::move(found)] {
      C2sStream* self = loop->stream_of(id);
      if (self == nullptr || self->state_ != State::authenticating || !self->scram_) return;
      // Told only once the client proved the password (sasl_response).
      self->account_disabled_ = found && found->account_disabled;
      if (failed) {
        // The outcome first, then what the client pipelined after it.
        self->sasl_failure(sasl::Failure::temporary_auth_failure);
        self->resume_input();
        return;
      }
      sasl::ScramCredentials creds = found ? to_credentials(hash, *found) : dummy_credentials(hash, username);
      self->session_->set_jid(Jid::make(username, self->host()).value_or(Jid()));
      std::string challenge = "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
      challenge += sasl::base64_encode(self->scram_->server_first(creds));
      challenge += "</challenge>";
      self->send(challenge);
      self->resume_input();
    });
  });
}

void C2sStream::sasl_response(const xml::Element& response) {
  if (state_ != State::authenticating || !mechanism_) {
    sasl_failure(sasl::Failure::malformed_request);
    return;
  }
  std::string text = response.text();
  std::string_view data = trim(text);
  std::string message;
  if (!data.empty() && data != "=") {
    auto decoded = sasl::base64_decode(data);
    if (!decoded) {
      sasl_failure(sasl::Failure::incorrect_encoding);
      return;
    }
    message = std::move(*decoded);
  }
  if (!scram_) {
    // The answer to our empty challenge: the initial response (the same
    // exchange going on, not a new one abandoning it).
    sasl::Mechanism mechanism = *mechanism_;
    mechanism_.reset();
    xml::Element as_auth("auth", std::string(ns::sasl));
    as_auth.set_attr("mechanism", std::string(sasl::mechanism_name(mechanism)));
    as_auth.add_text(message.empty() ? std::string("=") : sasl::base64_encode(message));
    sasl_start(as_auth);
    return;
  }
  auto final_message = scram_->client_final(message);
  if (!final_message) {
    sasl_failure(final_message.error());
    return;
  }
  if (!scram_->authzid().empty()) {
    auto authz = Jid::parse(scram_->authzid());
    if (!authz || *authz != jid().bare()) {
      sasl_failure(sasl::Failure::invalid_authzid);
      return;
    }
  }
  // XEP-0133 disable-user: the right password, a disabled account (RFC 6120 6.5.1).
  if (account_disabled_) {
    account_disabled_ = false;
    sasl_failure(sasl::Failure::account_disabled);
    return;
  }
  sasl_success(*final_message);
}

void C2sStream::sasl_plain(std::string_view message) {
  auto plain = sasl::parse_plain(message);
  if (!plain) {
    sasl_failure(plain.error());
    return;
  }
  auto user = nodeprep(plain->authcid);
  if (!user) {
    sasl_failure(sasl::Failure::not_authorized);
    return;
  }
  // SASLprep'd exactly once, here, as account creation did for the stored
  // verifiers and as a SCRAM client does before hashing.
  auto password = sasl::saslprep(plain->password);
  if (!password || password->empty()) {
    sasl_failure(sasl::Failure::not_authorized, {}, *user);
    return;
  }
  if (!plain->authzid.empty()) {
    auto authz = Jid::parse(plain->authzid);
    auto self_jid = Jid::make(*user, host());
    if (!authz || !self_jid || *authz != *self_jid) {
      sasl_failure(sasl::Failure::invalid_authzid, {}, *user);
      return;
    }
  }
  // PBKDF2 runs on the storage reader, not on the loop. The bytes after this
  // <auth/> wait unparsed: after <success/> they are the start of a new stream
  // (a client may pipeline its header), read by a new parser.
  suspend_input();
  pause_parser();
  ServerContext& ctx = ctx_;
  LoopContext* loop = loop_;
  SessionId id = session_->id();
  std::string host = this->host();
  std::string username = *user;
  std::string secret = std::move(*password);
  ctx.accounts->read([loop, id, host, username, secret](storage::AccountBackend& accounts) {
    auto record = accounts.get_credentials(host, username, "SCRAM-SHA-256");
    bool failed = !record;
    bool ok = false;
    bool disabled = false;
    // Logged as the SCRAM path's (the PLAIN path said nothing: found by
    // test_logging's storage error test).
    if (failed)
      spdlog::error("event=storage_error what=credentials user={}@{} error={}", log_value(username), host,
                    log_value(record.error().message));
    if (!failed) {
      // A missing account costs the same key derivation as a wrong password:
      // the answer's timing does not tell whether the account exists.
      sasl::ScramCredentials creds = record->has_value() ? to_credentials(sasl::Hash::sha256, **record)
                                                         : dummy_credentials(sasl::Hash::sha256, username);
      ok = sasl::verify_prepared_password(creds, secret) && record->has_value();
      // Told only to a client that gave the password (XEP-0133 disable-user, RFC 6120 6.5.1).
      disabled = ok && (*record)->account_disabled;
    }
    loop->loop.post([loop, id, username, failed, ok, disabled] {
      C2sStream* self = loop->stream_of(id);
      if (self == nullptr || self->state_ != State::authenticating) return;
      // The outcome first, then what the client pipelined after it.
      if (failed) {
        self->sasl_failure(sasl::Failure::temporary_auth_failure, {}, username);
      } else if (!ok) {
        self->sasl_failure(sasl::Failure::not_authorized, {}, username);
      } else if (disabled) {
        self->sasl_failure(sasl::Failure::account_disabled, {}, username);
      } else {
        self->session_->set_jid(Jid::make(username, self->host()).value_or(Jid()));
        self->sasl_success({});
      }
      self->resume_input();
    });
  });
}

void C2sStream::sasl_failure(sasl::Failure failure, std::string_view text, std::string_view plain_user) {
  // For the operator's log line below (issue 17): taken before the exchange is forgotten.
  std::string mechanism = mechanism_ ? std::string(sasl::mechanism_name(*mechanism_)) : std::string("-");
  std::string user(plain_user.empty() && scram_ ? std::string_view(scram_->authcid()) : plain_user);
  scram_.reset();
  mechanism_.reset();
  if (state_ == State::closing) return;
  state_ = State::negotiating;
  std::string out = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><";
  out += sasl::condition_name(failure);
  out += "/>";
  if (!text.empty()) {
    out += "<text xml:lang='en'>";
    xml::escape_text_to(out, text);
    out += "</text>";
  }
  out += "</failure>";
  send(out);
  if (failure == sasl::Failure::invalid_mechanism || failure == sasl::Failure::encryption_required) return;
  loop_->metrics.auth_failures.add();
  spdlog::info("event=auth_failure session={} ip={} mechanism={} user={} condition={}", session_->id(),
               conn_.peer_ip(), mechanism, log_value(user.empty() ? std::string_view("-") : std::string_view(user)),
               sasl::condition_name(failure));
  const config::LimitsConfig& limits = ctx_.config.limits;
  unsigned from_ip = 0;
  uint64_t now = uv_now(loop_->loop.uv());
  if (limits.max_auth_failures_per_ip != 0 && failure != sasl::Failure::temporary_auth_failure)
    from_ip = ctx_.auth_failures.record(conn_.peer_ip(), now, limits.auth_failure_window * 1000ull);
  // RFC 6120 §6.4.5: a reasonable number of retries, then policy-violation.
  if (++auth_failures_ >= limits.max_auth_failures) {
    close_with_stream_error("policy-violation", "Too many failed authentication attempts");
    return;
  }
  // Past half the address's allowance, each further guess waits (the next
  // bytes of this stream are read later), one more second each time, up to 5.
  unsigned half = limits.max_auth_failures_per_ip / 2;
  if (from_ip > half) conn_.throttle(std::min<uint64_t>(5000, 1000ull * (from_ip - half)));
}

void C2sStream::sasl_success(std::string_view additional_data) {
  scram_.reset();
  mechanism_.reset();
  authenticated_ = true;
  state_ = State::wait_stream;
  std::string out = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'";
  if (additional_data.empty()) {
    out += "/>";
  } else {
    out += ">";
    out += sasl::base64_encode(additional_data);
    out += "</success>";
  }
  send(out);
  spdlog::info("c2s {}: {} authenticated from {}", session_->id(), jid().bare_str(), conn_.peer_ip());
  // The client restarts the stream; a pipelining client may already have.
  // Whatever we say next (even an error) opens our new stream first.
  header_sent_ = false;
  parser_.reset(false);
  if (waiting_ && !waiting_->elements.empty()) {
    // Elements the client sent before this outcome, in the old stream: only
    // a new stream header may follow <success/> (RFC 6120 §6.4.6).
    waiting_.reset();
    close_with_stream_error("not-authorized", "Nothing but a new stream may follow <success/>");
  }
}

void C2sStream::count_abandoned_exchange() {
  // An exchange left unfinished (another <auth/>, or the connection gone after
  // the server-first-message) counts toward the address's failure limit like
  // a wrong password, so probing accounts that way is limited too.
  const config::LimitsConfig& limits = ctx_.config.limits;
  if (limits.max_auth_failures_per_ip == 0) return;
  ctx_.auth_failures.record(conn_.peer_ip(), uv_now(loop_->loop.uv()), limits.auth_failure_window * 1000ull);
}

}  // namespace parley
