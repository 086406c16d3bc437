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
    // The request line and headers of a request that is not a WebSocket
    // upgrade (`request` has no body yet). Return false to have the body
    // buffered (at most limits.max_body_bytes) and on_request called once it
    // is complete, with an answer filled at once. Return true to stream: the
    // handler took the exchange (set its body limit with set_body_limit here;
    // it gets the body through on_body, then on_body_end) and answers with
    // start_response / write_body / end_response, now or later.
    virtual bool on_head(const Request& request) {
      (void)request;
      return false;
    }
    virtual void on_body(std::string_view chunk) { (void)chunk; }
    virtual void on_body_end() {}
    // A streamed exchange ended without end_response: refused past its body
    // limit, a malformed body, or the connection failed. Nothing more may be
    // written for it.
    virtual void on_abort() {}
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

  // ---- A streamed exchange (Handler::on_head returned true) ----
  // From on_head: the most body bytes this request may carry (past it 413,
  // by Content-Length before any body byte, or as the chunks come).
  void set_body_limit(uint64_t bytes) { body_limit_ = bytes; }
  // No more body chunks after the current one until resume_body() (the
  // handler's sink is full); bytes that arrive meanwhile wait here, and the
  // owner should stop reading (paused() says so).
  void pause_body() { body_paused_ = true; }
  // Goes on with what waited. False once the connection is to close.
  bool resume_body();
  // The status line and headers (Content-Length added when
  // content_length >= 0; else the body is sent chunked). HEAD: no body goes
  // out whatever is written.
  void start_response(int status, const std::vector<Header>& headers, int64_t content_length);
  void write_body(std::string_view bytes);
  // The answer is complete: the next pipelined request is parsed (false:
  // the connection is to close, e.g. the request's body was not all read).
  bool end_response();
  // A streamed exchange is under way (head seen, answer not ended).
  bool exchange_open() const { return streaming_; }
  bool response_started() const { return response_started_; }
  // Reading should stop: the body is paused, or a complete request waits
  // for its answer with more input behind it.
  bool paused() const { return streaming_ && (body_paused_ || message_complete_); }
  // Ends the connection now: nothing more is parsed or answered.
  void kill() { done_ = true; }
  // Answers `status` (text `why`) with Connection: close, whatever was sent.
  void refuse_now(int status, std::string_view why) {
    if (!done_) refuse(status, why);
  }
  // The request being streamed (headers; its body is not kept).
  const Request& request() const { return request_; }

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
  bool parse(std::string_view bytes);
  void abort_exchange(int status, std::string_view why);

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
  // A streamed exchange.
  bool streaming_ = false;
  bool body_paused_ = false;
  bool message_complete_ = false;
  bool response_started_ = false;
  bool response_chunked_ = false;
  bool response_head_ = false;   // a HEAD: no body bytes go out
  bool close_after_ = false;     // the answer ends the connection
  bool in_parse_ = false;
  bool answered_ = false;        // answered before its message_complete (no body expected)
  bool body_expected_ = false;
  bool keep_alive_ = true;
  uint64_t body_limit_ = 0;
  uint64_t body_bytes_ = 0;
  std::string pending_;  // input that came while the exchange was paused
};

}  // namespace parley::http
