// The HTTP transport of a Connection (an HTTP listener's, `module: http`):
// the bytes the connection reads (after TLS for https) are HTTP/1.1 requests
// (http/server_conn.hpp): XEP-0156 host-meta is answered here; a WebSocket
// upgrade at /xmpp-websocket with the `xmpp` subprotocol turns the
// connection into an RFC 7395 transport, whose messages the connection's
// owner (the c2s stream) reads and writes as a stream, exactly as on TCP
// (core/net/xmpp_framing.hpp translates). Lives inside its Connection, on
// its loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/net/bosh_session.hpp"
#include "core/net/xmpp_framing.hpp"
#include "http/server_conn.hpp"
#include "parley/module.h"

namespace parley {

class ServerContext;
class Connection;
class ConnectionOwner;
struct HttpRouteEntry;
struct ModuleTables;

inline constexpr std::string_view kWebSocketPath = "/xmpp-websocket";
inline constexpr std::string_view kMetricsPath = "/metrics";

// The http::Limits of the config's `limits:` block.
http::Limits http_limits(const config::LimitsConfig& limits);

// Paths the core serves itself; a module's route may not take them.
bool core_http_path(std::string_view path);

class HttpTransport final : private http::ServerConn::Handler {
 public:
  HttpTransport(ServerContext& ctx, Connection& conn, ConnectionOwner& owner, const config::Listener& listener);
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Plaintext read. False: the connection is to end once what was written is flushed.
  bool feed(std::string_view bytes);
  // The owner's stream bytes: RFC 7395 messages once upgraded, dropped before.
  void write(std::string_view bytes);
  // The connection is closing at the owner's request: the WebSocket close frame.
  void closing();
  bool websocket() const { return upgraded_; }
  // The connection's write backlog shrank (Connection::after_write).
  void on_written();

  // ---- A module's exchange (issue 13 http_* host entries), on this loop ----
  // The open exchange `id` on the calling loop, or nullptr.
  static HttpTransport* find_exchange(uint64_t id);
  // Ends the calling loop's exchanges of a stopped module instance.
  static void drop_exchanges(parley_module* m);
  parley_module* exchange_module() const;
  const http::Request& exchange_request() const { return server_.request(); }
  int module_respond(int status, std::string_view headers, int64_t content_length);
  int module_write(std::string_view bytes);
  int module_end();
  int module_pause(bool paused);

  ~HttpTransport();

  // ---- BOSH (XEP-0124/0206 at /http-bind; http_transport_bosh.cpp) ----
  // The answer to the request waiting as `id` on the calling loop, if it is
  // still there.
  static void bosh_deliver(uint64_t id, BoshAnswer&& answer);

 private:
  bool bosh_head(const http::Request& request);
  void bosh_body_end();
  void bosh_other(const http::Request& request, http::Response& response);  // OPTIONS (CORS), others 405
  void bosh_respond(BoshAnswer&& answer);
  void bosh_drop();  // the request went (aborted, or the connection closes)

  struct Exchange;
  bool on_head(const http::Request& request) override;
  void on_body(std::string_view chunk) override;
  void on_body_end() override;
  void on_abort() override;
  void on_request(const http::Request& request, http::Response& response) override;
  bool on_websocket_request(const http::Request& request, std::string& subprotocol,
                            http::Response& refusal) override;
  void on_websocket_open() override;
  void on_websocket_message(std::string_view text) override;
  void on_output(std::string_view bytes) override;

  void host_meta(const http::Request& request, http::Response& response, bool json);
  void metrics(const http::Request& request, http::Response& response);
  // A whole answer to the streamed exchange under way (from on_head).
  void answer_now(int status, std::vector<http::Header> headers, std::string_view body);
  void finish_exchange(bool tell_module);
  void module_failed();  // the module threw, returned an error, or is stopped
  // After a module's call changed the exchange: reading, the end.
  void settle(bool go_on);
  void sync_reading();
  void progress();  // the idle timeout counts from the exchange's last progress

  ServerContext& ctx_;
  Connection& conn_;
  ConnectionOwner& owner_;
  const config::Listener& listener_;
  http::Limits limits_;
  http::ServerConn server_;
  framing::Outbound out_;
  bool upgraded_ = false;
  bool in_feed_ = false;
  bool admitted_ = true;  // within limits.http_max_connections_per_ip (counted)
  bool counted_ = false;
  bool reading_held_ = false;  // suspended for a paused exchange
  std::unique_ptr<Exchange> ex_;
  // A BOSH request: its body as it comes, then its wait for the answer.
  bool bosh_open_ = false;
  uint64_t bosh_wait_ = 0;
  std::string bosh_body_;
};

}  // namespace parley
