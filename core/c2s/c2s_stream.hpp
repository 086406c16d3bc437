// The c2s stream kind: the RFC 6120 state machine (stream headers, STARTTLS,
// SASL, resource binding) over a Connection, and the intake of a bound
// client's stanzas and nonzas into its Session. Owned by its Session while
// attached; a stream that resumes another session (session_attach) moves to
// that session, on that session's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/addr/jid.hpp"
#include "core/config/config.hpp"
#include "core/net/connection.hpp"
#include "core/sasl/sasl.hpp"
#include "core/session/session_table.hpp"
#include "parley/module.h"
#include "xml/element.hpp"
#include "xml/stream_parser.hpp"

namespace parley {

class ServerContext;
struct LoopContext;
struct Delivery;
class Session;
class BoshSession;
struct BoshParams;

class C2sStream final : private xml::StreamParser::Handler, public ConnectionOwner {
 public:
  C2sStream(ServerContext& ctx, LoopContext& loop, Session& session, const config::Listener& listener);
  ~C2sStream() override;
  C2sStream(const C2sStream&) = delete;
  C2sStream& operator=(const C2sStream&) = delete;

  // Accepts the pending connection of `server`. On failure the connection
  // closes (and the session goes with it).
  void start(uv_stream_t* server);
  // Without a socket (the whole-session fuzz target): bytes through feed().
  void start_without_socket(std::string peer_ip);
  void feed(std::string_view bytes);
  // A BOSH session's stream (core/net/bosh_session.hpp): no socket, the
  // session's requests carry the bytes. The session, or null if it failed.
  BoshSession* start_bosh(BoshParams&& params);

  Session& session() const { return *session_; }
  Connection& connection() { return conn_; }
  const Connection& connection() const { return conn_; }
  bool bound() const { return state_ == State::online; }
  bool authenticated_unbound() const { return state_ == State::bind && !attach_pending_; }
  bool closing() const { return state_ == State::closing; }

  // Writes a serialized stanza or nonza as is (after the stream header).
  // False once closing.
  bool write(std::string_view bytes);
  bool write_element(const xml::Element& element);
  bool send_element(const xml::Element& element);

  void hold_input();
  bool release_input();  // false: there was no hold

  // A bound client's stanza: checks, then routing. Public for the replay of
  // stanzas that waited while modules were swapped.
  void process_stanza(xml::Element&& stanza);

  // Sends the stream error (with our stream header first if none went out),
  // closes the stream and the connection once the bytes are flushed. Logged
  // at info with the condition (and `log_detail`, which the peer does not see).
  void close_with_stream_error(std::string_view condition, std::string_view text = {},
                               std::string_view log_detail = {});
  // A plain </stream:stream>, then close.
  void close_stream();
  // The same (a stream error if `condition` is not empty) for a stream its
  // detached session no longer owns (orphaned): the session does not end.
  void close_orphaned(std::string_view condition);

  // ---- re-attach (core/session/session_attach.cpp) ----
  // An attach is under way: input waits; the connection may leave the loop.
  void begin_attach();
  // Not attached after all: go on as an unbound stream.
  void cancel_attach();
  // Attached: what the client sent meanwhile is processed, reading goes on.
  void finish_attach();
  // Moves the connection to `loop`: once its socket is released here, this
  // stream leaves its own session (which ends) and `arrive` runs on `loop`
  // with it. `abandon` runs here instead if the connection ends first.
  // False: cannot (closing).
  using Arrive = std::function<void(std::unique_ptr<C2sStream>)>;
  bool migrate_to(unsigned loop, Arrive arrive, std::function<void()> abandon);
  // The stream now belongs to `session` on `loop` (migrated there, or the
  // same loop): the owner, the loop and the session change together.
  void rebind(LoopContext& loop, Session& session, bool migrated);
  // Its session was detached and no longer owns it (LoopContext::orphan_streams does).
  void orphan() { orphaned_ = true; }

  // The loop's idle-parser sweep (idle_parser_sweep.hpp): frees the parser
  // if no byte came since the last call. True: keep watching this stream.
  bool sweep_parser();

 private:
  enum class State : uint8_t {
    wait_stream,     // expecting a stream header
    negotiating,     // features sent; STARTTLS / SASL
    tls_handshake,   // after <proceed/>, or direct TLS
    authenticating,  // inside a SASL exchange
    bind,            // authenticated, waiting for resource binding (or a resume)
    online,          // bound: stanzas flow
    closing,
  };

  // xml::StreamParser::Handler
  void on_stream_open(const xml::StreamHeader& header) override;
  void on_stanza(xml::Element&& element) override;
  void on_stream_close() override;
  void on_parse_error(xml::ParseError error, std::string_view detail) override;

  // ConnectionOwner
  void on_connection_bytes(std::string_view bytes) override;
  void on_connection_secured() override;
  void on_connection_deadline() override;
  void on_connection_flood() override;
  void on_connection_lost() override;
  void on_unwritten(std::shared_ptr<Delivery> delivery) override;
  void on_connection_closed() override;
  void on_connection_migrating() override;
  void on_connection_message_end() override;
  void on_connection_upgraded() override;

  void begin_stream();
  bool start_tls();
  void send(std::string_view xml);
  void send_stream_header();
  void send_features();
  void begin_close();
  void abort_connection();  // no more bytes can be sent: close now
  // The authentication deadline: `seconds`, or less if auth_deadline_s_ is nearer.
  void arm_timer(unsigned seconds);
  void suspend_input();
  void resume_input();

  // SASL (c2s_auth.cpp)
  void handle_sasl(xml::Element&& element);
  void sasl_start(const xml::Element& auth);
  void sasl_response(const xml::Element& response);
  void sasl_plain(std::string_view message);
  // `user`: the account a PLAIN exchange named, for the operator's log line
  // (a SCRAM exchange's is in scram_).
  void sasl_failure(sasl::Failure failure, std::string_view text = {}, std::string_view user = {});
  void sasl_success(std::string_view additional_data);
  void count_abandoned_exchange();
  std::string advertised_mechanisms_xml() const;
  // Whether the -PLUS mechanisms are offered on this connection: TLS below
  // 1.3, or 1.3 where the listener opts in (Listener::tls13_channel_binding).
  bool offers_channel_binding() const;

  // Binding and stanzas (c2s_stanza.cpp)
  void handle_bind_state(xml::Element&& element);
  void handle_bind(const xml::Element& iq);
  void handle_stanza(xml::Element&& stanza);
  bool handle_nonza(xml::Element& element);  // false: no module took it
  void handle_own_presence(xml::Element&& presence);
  bool handle_session_iq(const xml::Element& iq);
  bool handle_preauth_iq(xml::Element& iq);  // false: no module takes it
  // While modules are swapped (hot reload): holds `element` and this stream's
  // next stanzas until the new code is in place.
  void wait_for_modules(xml::Element&& element);
  void reply_error(const xml::Element& stanza, std::string_view condition, std::string_view text = {});

  // Session data the stream reads often.
  const std::string& host() const;
  const Jid& jid() const;

  ServerContext& ctx_;
  LoopContext* loop_;
  Session* session_;
  const config::Listener& listener_;
  Connection conn_;
  xml::StreamParser parser_;

  State state_ = State::wait_stream;
  bool header_sent_ = false;
  bool authenticated_ = false;
  bool input_suspended_ = false;
  bool attach_pending_ = false;
  bool close_after_input_ = false;  // the peer's </stream:stream> came while stanzas before it waited
  // Its session was detached: the stream only closes its connection now and
  // frees itself from LoopContext::orphan_streams, never touching the session.
  bool orphaned_ = false;
  // One byte for the three (a third flag would have grown the stream by 8 B).
  bool parser_watched_ : 1 = false;  // in the loop's parser_sweep list (under session_'s id)
  bool parser_read_ : 1 = false;     // bytes parsed since the sweep's last look
  bool parser_busy_ : 1 = false;     // read from in the last sweep period too: the parser stays between reads
  uint8_t auth_failures_ = 0;
  uint8_t module_holds_ = 0;
  // SCRAM: the account fetched at client-first is disabled (XEP-0133); answered
  // <account-disabled/> once the client proved the password. (In the padding
  // before auth_deadline_s_: the stream does not grow.)
  bool account_disabled_ = false;
  // Loop time (seconds, rounded up) by which the stream must be online.
  uint32_t auth_deadline_s_ = 0;

  std::string stream_id_;

  // SASL exchange state.
  std::unique_ptr<sasl::ScramServer> scram_;
  std::optional<sasl::Mechanism> mechanism_;

  struct Migration {
    unsigned loop;
    Arrive arrive;
    std::function<void()> abandon;
  };
  std::unique_ptr<Migration> migration_;  // only while the connection moves
  void abandon_migration();

  // What arrived while input was suspended (a storage round trip, a hold, an
  // attach). Allocated only when something has to wait: an empty std::deque
  // allocates 576 bytes at construction (libstdc++).
  struct Waiting {
    std::deque<xml::Element> elements;
    // While the parser is paused (pause_parser): the bytes after the element
    // it stopped at, fed when the input resumes. At most what was read
    // before reading stopped.
    std::string unparsed;
    bool paused = false;
  };
  std::unique_ptr<Waiting> waiting_;
  void pause_parser();
  void feed_bytes(std::string_view bytes);
  // After input on an online stream: keep the parser until the input goes quiet.
  void keep_parser_while_busy();
};

}  // namespace parley
