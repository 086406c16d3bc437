// The HTTP transport of a Connection (an HTTP listener's, `module: http`):
// the bytes the connection reads (after TLS for https) are HTTP/1.1 requests
// (http/server_conn.hpp): XEP-0156 host-meta is answered here; a WebSocket
// upgrade at /xmpp-websocket with the `xmpp` subprotocol turns the
// connection into an RFC 7395 transport, whose messages the connection's
// owner (the c2s stream) reads and writes as a stream, exactly as on TCP
// (core/net/xmpp_framing.hpp translates). Lives inside its Connection, on
// its loop.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/net/xmpp_framing.hpp"
#include "http/server_conn.hpp"

namespace parley {

class ServerContext;
class Connection;
class ConnectionOwner;

inline constexpr std::string_view kWebSocketPath = "/xmpp-websocket";

// The http::Limits of the config's `limits:` block.
http::Limits http_limits(const config::LimitsConfig& limits);

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

 private:
  void on_request(const http::Request& request, http::Response& response) override;
  bool on_websocket_request(const http::Request& request, std::string& subprotocol,
                            http::Response& refusal) override;
  void on_websocket_open() override;
  void on_websocket_message(std::string_view text) override;
  void on_output(std::string_view bytes) override;

  void host_meta(const http::Request& request, http::Response& response, bool json);

  ServerContext& ctx_;
  Connection& conn_;
  ConnectionOwner& owner_;
  const config::Listener& listener_;
  http::Limits limits_;
  http::ServerConn server_;
  framing::Outbound out_;
  bool upgraded_ = false;
};

}  // namespace parley
