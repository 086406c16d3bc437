// A Connection is bytes: one accepted TCP socket, its TLS (STARTTLS or direct),
// its read side (rate limit, throttling, holds) and its write path (a
// uv_try_write fast path, then a bounded backlog; tracked sends; routed
// stanzas held until written). It knows nothing of XMPP: a stream kind (c2s
// today; component and s2s later) runs over it as its ConnectionOwner.
//
// A connection lives on one loop at a time and is touched only by that loop's
// thread. It can move to another loop once (migrate_out / migrate_in, for a
// session resumed on another loop): its socket is re-opened there, its TLS
// state travels with it, while no thread touches it in between.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/net/output_batch.hpp"
#include "parley/module.h"

namespace parley {

class ServerContext;
struct LoopContext;
struct Delivery;

class HttpTransport;
class BoshSession;
struct BoshParams;

namespace config {
struct Listener;
}

namespace tls {
class ContextStore;
class Stream;
}  // namespace tls

// What a stream kind hears from its connection. Every call is on the
// connection's loop, never from inside a call the owner made on the
// connection (except on_connection_lost and on_unwritten, which a write error
// raises from inside send: the owner must expect them there).
class ConnectionOwner {
 public:
  // Plaintext bytes, in order (after TLS when it is on).
  virtual void on_connection_bytes(std::string_view bytes) = 0;
  // The TLS handshake is complete: a new stream starts inside it.
  virtual void on_connection_secured() = 0;
  // The deadline armed with arm_deadline passed.
  virtual void on_connection_deadline() = 0;
  // The peer goes on sending far above limits.max_bytes_per_second.
  virtual void on_connection_flood() = 0;
  // The connection ended without the owner asking (EOF, reset, a TLS or
  // write error, cut as a slow reader). Nothing more can be written. Once, and
  // before the unwritten stanzas are handed back.
  virtual void on_connection_lost() = 0;
  // A routed stanza the connection accepted and did not write before it ended.
  virtual void on_unwritten(std::shared_ptr<Delivery> delivery) = 0;
  // Every handle is closed: nothing refers to the connection any more and
  // the owner may free it. The last call.
  virtual void on_connection_closed() = 0;
  // Migration (migrate_out): the socket is released; the connection may now
  // be handed to another loop.
  virtual void on_connection_migrating() {}
  // A message transport (WebSocket, RFC 7395) delivered the last bytes of
  // one message: the owner may check that it held whole elements.
  virtual void on_connection_message_end() {}
  // The transport finished its own handshake (the WebSocket upgrade): the
  // owner's stream starts now.
  virtual void on_connection_upgraded() {}
  // A write that waited in the backlog completed (pending_write_bytes() went
  // down): an owner that paces its own queue (a component) may send more.
  virtual void on_connection_written() {}

 protected:
  ~ConnectionOwner() = default;
};

class Connection {
 public:
  // `log_id` names the connection in logs (the id of the session it was
  // accepted for).
  Connection(ServerContext& ctx, LoopContext& loop, uint64_t log_id, ConnectionOwner& owner);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts the pending connection of `server`. False: refused (too many from
  // that address) or failed; the connection is closing then.
  bool accept(uv_stream_t* server);
  // A connection without a socket (the whole-session fuzz target): bytes come
  // through feed(), everything written goes to the output tap.
  using OutputTap = void (*)(uint64_t log_id, std::string_view bytes);
  static void set_output_tap(OutputTap tap);
  void open_without_socket(std::string peer_ip);
  void feed(std::string_view bytes) { handle_bytes(bytes); }

  // An HTTP listener's connection (core/net/http_transport.hpp): bytes read
  // are HTTP requests until a WebSocket upgrade to /xmpp-websocket, then
  // RFC 7395 messages; the owner reads and writes a stream as on TCP. Before
  // start_reading().
  void use_http(const config::Listener& listener);
  // Upgraded to an XMPP WebSocket: TLS, if any, is the WebSocket's (no STARTTLS).
  bool websocket() const;
  bool http() const { return http_transport() != nullptr; }
  // Bytes queued for the socket and not taken yet (an HTTP answer's backpressure).
  size_t write_backlog() const;

  // A BOSH session's connection (core/net/bosh_session.hpp): no socket; the
  // owner's bytes come from the session's requests and what it writes waits
  // for them. Secure when the session was created over https.
  BoshSession* open_bosh(BoshParams&& params);
  bool bosh() const { return bosh_session() != nullptr; }

  // Server-side TLS from the next byte read. False: could not start (closing).
  bool start_tls(std::string_view default_host);
  bool tls_started() const { return tls_ != nullptr; }
  bool secure() const { return secure_; }
  const tls::Stream* tls() const { return tls_.get(); }

  void start_reading();
  // Holds (a storage round trip, a module's session_hold): no read meanwhile.
  void suspend_reading();
  void resume_reading();
  // The loop's throttle timer: reading may go on (LoopContext::throttle).
  void end_throttle();
  // Stops reading for `delay_ms` (a guessing client's next attempt waits).
  void throttle(uint64_t delay_ms);

  // One timer per connection, allocated only while armed: an online session
  // pays nothing for it.
  void arm_deadline(uint64_t ms);
  void disarm_deadline();

  // Writes (through TLS once it is up). Nothing happens once closing.
  void send(std::string_view bytes);
  // A routed stanza (its bytes serialized once for every recipient). False:
  // not taken (closing, or over the backlog limits: the connection is then
  // cut as a slow reader). Taken and not written when the connection ends:
  // handed back through on_unwritten.
  bool deliver(const std::shared_ptr<Delivery>& delivery);
  // Bytes handed to send() that the socket has not taken yet (past this loop
  // turn: what the turn's batch holds is not counted, see output_batch.hpp).
  size_t pending_write_bytes() const;
  // What this loop turn wrote leaves now (the loop calls it once per turn;
  // closing, STARTTLS and migration call it first).
  void flush_output();
  // A tracked send (ABI 1.2 session_send_tracked): `done` runs once every
  // byte was handed to the socket (1) or the connection ended first (0);
  // never during this call. False: not taken, done never runs.
  bool send_tracked(std::string_view bytes, parley_module* owner, parley_sent_fn done, void* arg);
  void drop_tracked(parley_module* owner);  // a stopped module's, without completion

  // Flushes what is queued, then closes (TLS close_notify first).
  void close_after_flush();
  // Closes now; what is queued is not written.
  void abort();
  // Ends the connection as if the peer had gone (on_connection_lost runs,
  // from inside this call, then the handles close): a module found it dead.
  void cut() { lost(); }
  bool closing() const { return closing_; }

  // Migration to another loop. migrate_out: reading stops and, once nothing
  // waits to be written, the socket is duplicated and this loop's handles
  // closed; on_connection_migrating then says the object may travel.
  // False: cannot (closing, or no socket). migrate_in, on the new loop: the
  // socket is opened there; reading starts with start_reading(). A BOSH
  // session's connection (no socket) moves too: its session goes with it
  // (BoshSession::leave / arrive).
  bool migrate_out();
  bool migrate_in(LoopContext& loop);
  bool migrating() const { return migrate_fd_ >= 0 || migrate_pending_ || bosh_moving_; }

  const std::string& peer_ip() const { return peer_ip_; }
  // Loop time in seconds (uv_now / 1000, the same clock on every loop) of the accept and of
  // the last bytes read from the peer.
  uint32_t connected_s() const { return connected_s_; }
  uint32_t last_read_s() const { return last_read_s_; }
  // The session the connection serves: its logs and the loop's throttle
  // find it by this id. Changes when a connection resumes another session.
  uint64_t log_id() const { return log_id_; }
  void set_log_id(uint64_t id) { log_id_ = id; }
  LoopContext& loop() const { return *loop_; }

 private:
  struct Backlog;
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_tcp_close(uv_handle_t* handle);
  static void on_timer_close(uv_handle_t* handle);
  static void on_timer(uv_timer_t* timer);

  friend class HttpTransport;
  friend class BoshSession;
  void handle_bytes(std::string_view bytes);
  void to_owner(std::string_view plaintext);  // through the HTTP transport when there is one
  // Bytes to the peer as they are: TLS, then the socket (the transport's frames).
  void send_plain(std::string_view bytes);
  // The same, now (no batch): through TLS when it is up, then write_raw.
  // Returns the raw bytes handed to write_raw (0 when TLS failed).
  size_t send_now(std::string_view bytes);
  // This turn's batch is not written (the connection ended): its stanzas
  // are handed back to the owner.
  void drop_output();
  // This connection's entry in its loop's batch, unmarked (flush_output and
  // drop_output then own what it holds); null when it has none.
  OutputBatch::Entry* take_batch_entry(OutputBatch** batch, uint32_t* slot);
  bool batchable() const;
  // The HTTP transport is done (Connection: close, a refused request, the
  // WebSocket closing handshake): the owner hears it as lost unless it asked.
  void end_after_flush();
  bool within_rate(size_t bytes);
  void write_raw(std::string_view bytes);
  bool backlog_fits(size_t bytes) const;
  void linger();  // a slow reader's socket outlives this connection a while (LingeringSockets)
  bool writes_waiting() const;
  void cut_slow_reader(size_t adding);
  void after_write();
  void release_written_stanzas();
  void post_completions();
  void finish_backlog();
  void lost();            // an end the owner did not ask for
  void close_handles();
  void handle_closed();   // one handle's close callback ran
  void finish_migration_out();

  ServerContext& ctx_;
  LoopContext* loop_;
  ConnectionOwner& owner_;
  uint64_t log_id_;

  uv_tcp_t tcp_{};
  uv_timer_t* timer_ = nullptr;  // only while a deadline is armed
  int migrate_fd_ = -1;           // the duplicated socket, between loops
  // This turn's entry in the loop's OutputBatch (0: none).
  uint32_t batch_slot_ = 0;
  // Loop time (uv_now, in seconds) of the accept and of the last bytes read: connected
  // since and idle, for parleyctl connected-users-info. Written by this loop only.
  uint32_t connected_s_ = 0;
  uint32_t last_read_s_ = 0;
  // One bit each (this loop's thread alone writes them): the four words
  // above and these fit where the flags and padding were.
  bool migrate_pending_ : 1 = false;  // waiting for the backlog to drain
  bool closing_ : 1 = false;          // close asked, or the connection ended
  bool lost_reported_ : 1 = false;
  bool shutdown_requested_ : 1 = false;
  bool secure_ : 1 = false;
  bool counted_ip_ : 1 = false;
  bool reading_suspended_ : 1 = false;
  bool throttled_ : 1 = false;
  bool socketless_ : 1 = false;
  bool bosh_kind_ : 1 = false;  // transport_ is a BoshSession (else an HttpTransport, or null)
  bool bosh_moving_ : 1 = false;  // a BOSH connection between migrate_out and migrate_in
  uint8_t open_handles_ = 0;  // at most 2
  // Token bucket of limits.max_bytes_per_second (one second of burst).
  int64_t rate_budget_ = 0;
  uint64_t rate_checked_ms_ = 0;

  std::unique_ptr<Backlog> backlog_;  // only while writes are pending or tracked sends wait
  std::unique_ptr<tls::Stream> tls_;
  // Owned, one slot for both (a connection's size is per session): the HTTP
  // transport of an HTTP listener's connection, or the BOSH session of a
  // socketless one (bosh_kind_); null on a c2s listener's.
  union {
    HttpTransport* http_ = nullptr;
    BoshSession* bosh_;
  };
  HttpTransport* http_transport() const { return bosh_kind_ ? nullptr : http_; }
  BoshSession* bosh_session() const { return bosh_kind_ ? bosh_ : nullptr; }
  std::shared_ptr<tls::ContextStore> tls_store_;  // held during the handshake (SNI)
  std::string peer_ip_;

  static OutputTap output_tap_;  // null in parleyd
};

}  // namespace parley
