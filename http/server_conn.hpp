// One server-side HTTP/1.1 connection as bytes in, bytes out: requests parsed
// by Node's http_parser (Debian's libhttp-parser-dev), WebSocket (RFC 6455)
// frames after an upgrade by wslay (libwslay-dev). It owns no socket, no
// timer and no thread: its owner feeds it what it read and writes what
// on_output hands back, on the owner's loop. It knows nothing of XMPP.
//
// Why not h2o (libh2o-dev, h2o on libuv): h2o owns its sockets and does its
// own TLS, so a WebSocket from it would be a connection of a second kind,
// outside the core's Connection (its TLS with SNI, rate limit, bounded write
// path, deadline, migration between loops). This glue keeps one Connection
// for every transport; the library work (HTTP parsing, WebSocket framing,
// control frames, message reassembly) is still done by the two libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace parley::http {

// Every bound of an HTTP connection, in one place (the config's `limits:`).
struct Limits {
  size_t max_header_bytes = 8192;            // request line and headers; past it 431
  size_t max_body_bytes = 65536;             // past it 413
  unsigned max_requests_per_connection = 100;  // the last one is answered with Connection: close
  size_t max_message_bytes = 262144 + 1024;  // one WebSocket message; past it close 1009
};

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // without the query
  std::vector<Header> headers;
  std::string body;
  // The header's value (names compare case-insensitively); empty if absent.
  std::string_view header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // Content-Length and Connection are added
  std::string body;
};

const char* status_text(int status);
// True if the comma-separated list `list` holds `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token);

class ServerConn {
 public:
  // Called synchronously from inside feed() (and on_output from send_text()).
  class Handler {
   public:
    // A complete request that is not a WebSocket upgrade: fill `response`.
    virtual void on_request(const Request& request, Response& response) = 0;
    // A WebSocket upgrade for request.path. Return true to accept with
    // `subprotocol` (may stay empty); false to refuse with `refusal`.
    virtual bool on_websocket_request(const Request& request, std::string& subprotocol, Response& refusal) = 0;
    // The 101 answer went out: messages follow.
    virtual void on_websocket_open() = 0;
    // One complete text message (fragments reassembled).
    virtual void on_websocket_message(std::string_view text) = 0;
    // Bytes to write to the peer, in order.
    virtual void on_output(std::string_view bytes) = 0;

   protected:
    ~Handler() = default;
  };

  ServerConn(Handler& handler, const Limits& limits);
  ~ServerConn();
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;

  // Parses `bytes`. False once the connection is to be closed (a bad
  // request answered, Connection: close, the WebSocket closing handshake
  // done or failed): write what was output, then close.
  bool feed(std::string_view bytes);
  bool done() const { return done_; }
  bool websocket() const { return ws_ != nullptr; }
  // The requests answered so far on this connection.
  unsigned requests() const { return requests_; }

  // A text message to the peer (WebSocket mode), framed and output at once.
  // False: not a WebSocket, or it is closing.
  bool send_text(std::string_view text);
  // Starts the closing handshake (RFC 6455 §7) with `code`; the peer's reply
  // ends the connection (feed() returns false).
  void close_websocket(uint16_t code = 1000);

 private:
  struct Parser;
  struct WebSocket;
  friend struct Parser;
  friend struct WebSocket;

  void respond(Response& response, bool close, bool head = false);
  void refuse(int status, std::string_view why);
  void finish_request();
  void upgrade();
  bool feed_websocket(std::string_view bytes);
  void flush_websocket();

  Handler& handler_;
  const Limits& limits_;
  std::unique_ptr<Parser> parser_;  // until the upgrade
  std::unique_ptr<WebSocket> ws_;   // after it
  Request request_;
  std::string field_;                // the header name being read
  size_t header_bytes_ = 0;
  unsigned requests_ = 0;
  bool in_value_ = false;
  bool done_ = false;
  bool upgrade_wanted_ = false;
  bool close_sent_ = false;  // by close_websocket
};

}  // namespace parley::http
