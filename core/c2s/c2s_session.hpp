// One client connection: socket, optional TLS, the XML stream, and the RFC 6120
// negotiation (STARTTLS -> SASL -> bind) up to an online session. Lives on one
// loop for its whole life; owned by that loop's LoopContext and destroyed in
// the close callback of its last libuv handle.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/config/config.hpp"
#include "parley/module.h"
#include "core/sasl/sasl.hpp"
#include "core/session/session_table.hpp"
#include "xml/element.hpp"
#include "xml/stream_parser.hpp"

namespace parley {

class ServerContext;
struct LoopContext;
struct Delivery;

namespace tls {
class ContextStore;
class Stream;
}  // namespace tls

class C2sSession final : private xml::StreamParser::Handler {
 public:
  C2sSession(ServerContext& ctx, LoopContext& loop, SessionId id, const config::Listener& listener);
  ~C2sSession() override;
  C2sSession(const C2sSession&) = delete;
  C2sSession& operator=(const C2sSession&) = delete;

  // Accepts the pending connection of `server`. On failure the session closes
  // itself (and is destroyed from its close callback).
  void start(uv_stream_t* server);

  SessionId id() const { return id_; }
  bool online() const { return state_ == State::online; }
  const Jid& jid() const { return jid_; }

  // Writes a routed stanza. False when this session can no longer take
  // stanzas (closing, or not bound yet), or when the stanza would take its
  // write backlog over the limits (the session is then cut as a slow reader):
  // the router then reroutes. A stanza accepted but not written to the socket
  // when the connection ends is routed again (RFC 6121's rules for a resource
  // that is gone), never dropped silently.
  bool deliver(const std::shared_ptr<Delivery>& delivery);

  // A tracked send (parley_host_api.session_send_tracked, ABI 1.2): `done`
  // runs once every byte of the stanza was handed to the socket (written 1),
  // or the connection ended first (0); never during this call. False: not
  // accepted (not online, closing, or over the backlog limits), done never runs.
  bool send_tracked(const xml::Element& stanza, parley_module* owner, parley_sent_fn done, void* arg);
  // The tracked sends of a stopped module, dropped without their completion.
  void drop_tracked(parley_module* owner);

  // Module data kept with the session (parley_host_api.session_set_data).
  void set_module_data(parley_module* owner, void* data, void (*free_fn)(void*));
  void* module_data(parley_module* owner) const;
  void drop_module_data(parley_module* owner);  // before that module is unloaded

  // The loop's throttle timer: reading may go on.
  void end_throttle();

  // A module's hold on this session's input (parley_host_api.session_hold):
  // nothing more is read or processed until every hold is released.
  void hold_input();
  bool release_input();  // false: there was no hold

  // Writes a stanza as is, in any state after the stream opened (the answer to
  // a pre-authentication iq). False once closing.
  bool send_direct(const xml::Element& stanza);

  const std::string& peer_ip() const { return peer_ip_; }

  // A stanza from this (bound) client: filters, then routing. Public for the
  // replay of stanzas that waited while modules were swapped.
  void process_stanza(xml::Element&& stanza);

  // A session without a socket, for the whole-session fuzz target and tests:
  // bytes arrive through feed_detached(), and every byte the session would
  // write goes to the output tap (one per process, set before any session).
  using OutputTap = void (*)(SessionId session, std::string_view bytes);
  static void set_output_tap(OutputTap tap);
  void start_detached(std::string peer_ip);
  void feed_detached(std::string_view bytes);

  // Sends the stream error (with our stream header first if none went out),
  // closes the stream and the connection once the bytes are flushed. Logged
  // at info with the condition (and `log_detail`, which the peer does not see).
  void close_with_stream_error(std::string_view condition, std::string_view text = {},
                               std::string_view log_detail = {});

 private:
  enum class State : uint8_t {
    wait_stream,     // expecting a stream header
    negotiating,     // features sent; STARTTLS / SASL
    tls_handshake,   // after <proceed/>, or direct TLS
    authenticating,  // inside a SASL exchange
    bind,            // authenticated, waiting for resource binding
    online,          // bound: stanzas flow
    closing,
  };

  // xml::StreamParser::Handler
  void on_stream_open(const xml::StreamHeader& header) override;
  void on_stanza(xml::Element&& element) override;
  void on_stream_close() override;
  void on_parse_error(xml::ParseError error, std::string_view detail) override;

  // I/O (c2s_session.cpp)
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_close(uv_handle_t* handle);
  static void on_timer(uv_timer_t* timer);
  void handle_bytes(std::string_view bytes);
  void begin_stream();  // after accept (or start_detached): timers, TLS, reading
  bool start_tls();
  void send(std::string_view xml);
  void send_element(const xml::Element& element);
  void write_raw(std::string_view bytes);
  // Whether `bytes` more fit in the write backlog (this session's cap and its
  // loop's share of the server-wide budget).
  bool backlog_fits(size_t bytes) const;
  bool writes_waiting() const;
  void cut_slow_reader(size_t adding);
  void after_write();           // completions due, then free an idle backlog
  void release_written_stanzas();  // routed stanzas whose bytes are all written
  void post_completions();      // completions due now run from the loop, not from a send
  void finish_backlog();        // the connection is closed: settle what is pending
  void send_stream_header();
  void send_features();
  void close_stream();   // our </stream:stream>, then close
  void begin_close();    // stop input, leave the session table, flush, close handles
  void abort_connection();  // no more bytes can be sent: close now
  // The authentication timer: `seconds`, or less if auth_deadline_s_ is nearer.
  void arm_timer(unsigned seconds);
  void suspend_input();
  void resume_input();
  bool within_rate(size_t bytes);  // false: the session is being closed for flooding
  void start_reading();

  // SASL (c2s_auth.cpp)
  void handle_sasl(xml::Element&& element);
  void sasl_start(const xml::Element& auth);
  void sasl_response(const xml::Element& response);
  void sasl_plain(std::string_view message);
  void sasl_failure(sasl::Failure failure, std::string_view text = {});
  void sasl_success(std::string_view additional_data);
  void count_abandoned_exchange();  // an exchange given up half-way: a failure of the address
  std::string advertised_mechanisms_xml() const;

  // Binding and stanzas (c2s_stanza.cpp)
  void handle_bind_state(xml::Element&& element);
  void handle_bind(const xml::Element& iq);
  void handle_stanza(xml::Element&& stanza);
  void handle_own_presence(xml::Element&& presence);
  bool handle_session_iq(const xml::Element& iq);
  bool handle_preauth_iq(xml::Element& iq);  // false: no module takes it
  // While modules are swapped (hot reload): holds `element` and this stream's
  // next stanzas until the new code is in place.
  void wait_for_modules(xml::Element&& element);
  void reply_error(const xml::Element& stanza, std::string_view condition, std::string_view text = {});
  void leave_session_table();
  parley_result run_session_hook(parley_event event, xml::Element* stanza);

  ServerContext& ctx_;
  LoopContext& loop_;
  const SessionId id_;
  const config::Listener& listener_;

  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  int open_handles_ = 0;
  // Loop time (seconds, rounded up) by which the stream must be online. 32 bits
  // next to open_handles_ fill what would be padding (the size budget).
  uint32_t auth_deadline_s_ = 0;
  // Exists only while writes are pending or tracked sends wait: an idle
  // session pays one pointer for the write path (c2s_session.cpp).
  struct Backlog;
  std::unique_ptr<Backlog> backlog_;

  std::unique_ptr<tls::Stream> tls_;
  std::shared_ptr<tls::ContextStore> tls_store_;  // held during the handshake (SNI)
  xml::StreamParser parser_;

  State state_ = State::wait_stream;
  bool header_sent_ = false;
  bool secure_ = false;
  bool authenticated_ = false;
  bool available_ = false;
  bool counted_ip_ = false;
  bool input_suspended_ = false;
  bool shutdown_requested_ = false;
  bool announced_ = false;  // SESSION_OPENED ran; SESSION_CLOSED is owed
  bool close_after_input_ = false;  // the peer's </stream:stream> came while stanzas before it waited
  uint8_t auth_failures_ = 0;
  uint8_t module_holds_ = 0;
  bool throttled_ = false;
  int priority_ = 0;
  // Token bucket of limits.max_bytes_per_second (one second of burst).
  int64_t rate_budget_ = 0;
  uint64_t rate_checked_ms_ = 0;

  std::string host_;        // the served domain this stream is for
  std::string stream_id_;
  std::string peer_ip_;
  Jid jid_;                 // after SASL: bare; after bind: full

  // SASL exchange state.
  std::unique_ptr<sasl::ScramServer> scram_;
  std::optional<sasl::Mechanism> mechanism_;

  struct ModuleSlot {
    parley_module* owner;
    void* data;
    void (*free_fn)(void*);
  };
  std::vector<ModuleSlot> module_slots_;  // usually empty: no cost for sessions modules ignore

  // Stanzas that arrived while input was suspended for a storage round trip.
  // Allocated only when a stanza has to wait: an empty std::deque allocates
  // 576 bytes at construction (libstdc++), which every idle session paid.
  std::unique_ptr<std::deque<xml::Element>> deferred_;

  static OutputTap output_tap_;  // null in parleyd
};

}  // namespace parley
