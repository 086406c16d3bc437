#include "http/server_conn.hpp"

#include <http_parser.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace parley::http {

namespace {

// Input a paused exchange may hold beyond one request head (what the owner
// had read when it stopped reading: a read and a TLS record or two).
constexpr size_t kMaxPendingBytes = 1024 * 1024;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
std::string websocket_accept(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha1(), nullptr);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

// A Sec-WebSocket-Key is the base64 of 16 bytes: 24 characters ending "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22))
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return false;
  return true;
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const Header& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

const char* status_text(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

// ---- HTTP/1.1 requests (http_parser) ----

struct ServerConn::Parser {
  http_parser parser{};
  http_parser_settings settings{};
  ServerConn* conn = nullptr;
  int refuse_status = 0;  // a limit a callback found exceeded

  static ServerConn& of(http_parser* p) { return *static_cast<Parser*>(p->data)->conn; }
  static Parser& self(http_parser* p) { return *static_cast<Parser*>(p->data); }

  // Request line and headers count against max_header_bytes together.
  static bool count(http_parser* p, size_t n) {
    ServerConn& c = of(p);
    c.header_bytes_ += n;
    if (c.header_bytes_ <= c.limits_.max_header_bytes) return true;
    self(p).refuse_status = 431;
    return false;
  }

  static int on_message_begin(http_parser* p) {
    ServerConn& c = of(p);
    c.request_ = Request{};
    c.field_.clear();
    c.header_bytes_ = 0;
    c.in_value_ = false;
    return 0;
  }
  static int on_url(http_parser* p, const char* at, size_t n) {
    if (!count(p, n)) return 1;
    of(p).request_.target.append(at, n);
    return 0;
  }
  static int on_header_field(http_parser* p, const char* at, size_t n) {
    ServerConn& c = of(p);
    // A new field's ": " and CRLF count too (a flood of empty headers is
    // bounded), once per field however its name was split between reads.
    bool starts = c.in_value_ || c.field_.empty();
    if (!count(p, n + (starts ? 4 : 0))) return 1;
    if (c.in_value_) {
      c.in_value_ = false;
      c.field_.clear();
    }
    c.field_.append(at, n);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, size_t n) {
    if (!count(p, n)) return 1;
    ServerConn& c = of(p);
    if (!c.in_value_) {
      c.in_value_ = true;
      c.request_.headers.push_back(Header{c.field_, {}});
    }
    c.request_.headers.back().value.append(at, n);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    ServerConn& c = of(p);
    c.request_.method = http_method_str(static_cast<http_method>(p->method));
    std::string_view target = c.request_.target;
    c.request_.path = std::string(target.substr(0, target.find('?')));
    for (Header& h : c.request_.headers) h.value = std::string(trim(h.value));
    if (p->http_major != 1) {
      self(p).refuse_status = 505;
      return -1;
    }
    c.body_limit_ = c.limits_.max_body_bytes;
    c.body_bytes_ = 0;
    c.message_complete_ = false;
    c.answered_ = false;
    c.keep_alive_ = http_should_keep_alive(p) != 0;
    bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
    c.body_expected_ = (p->flags & F_CHUNKED) != 0 || (has_length && p->content_length > 0);
    if (!p->upgrade) {
      c.streaming_ = true;  // while on_head runs: an answer from inside it is a streamed one
      c.streaming_ = c.handler_.on_head(c.request_) || c.answered_;
      if (c.done_) return -1;
      if (c.answered_) return 0;  // answered from on_head; its body (if any) closes the connection
    }
    if (has_length && p->content_length > c.body_limit_) {
      if (c.streaming_) {
        c.abort_exchange(413, "request body too large");
        return -1;
      }
      self(p).refuse_status = 413;
      return -1;
    }
    // RFC 9110 §10.1.1: a client that waits before it sends its body (curl
    // does, a second, for large uploads) is told to go on once the request
    // is taken; one refused already got its final answer instead.
    if (c.body_expected_ && !p->upgrade && p->http_minor >= 1 && iequals(c.request_.header("Expect"), "100-continue"))
      c.handler_.on_output("HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
  }
  static int on_body(http_parser* p, const char* at, size_t n) {
    ServerConn& c = of(p);
    if (c.streaming_) {
      if (c.answered_) return 0;  // answered already: the body is read and dropped, then the connection closes
      if (c.body_bytes_ + n > c.body_limit_) {
        c.abort_exchange(413, "request body too large");
        return 1;
      }
      c.body_bytes_ += n;
      c.handler_.on_body(std::string_view(at, n));
      if (c.done_) return 1;
      // The last piece of a Content-Length body is not paused after: the
      // message completes without another byte, and a parse of nothing is
      // http_parser's end of input.
      bool last = (p->flags & F_CHUNKED) == 0 && p->content_length == 0;
      if (c.streaming_ && c.body_paused_ && !last) http_parser_pause(p, 1);
      return 0;
    }
    if (c.request_.body.size() + n > c.limits_.max_body_bytes) {
      self(p).refuse_status = 413;
      return 1;
    }
    c.request_.body.append(at, n);
    return 0;
  }
  static int on_message_complete(http_parser* p) {
    ServerConn& c = of(p);
    if (p->upgrade) {
      c.upgrade_wanted_ = true;
      return 0;  // http_parser stops here: the rest is the new protocol's
    }
    if (c.streaming_) {
      c.message_complete_ = true;
      if (c.answered_) {
        c.streaming_ = false;
        c.answered_ = false;
        return c.done_ ? 1 : 0;
      }
      c.handler_.on_body_end();
      if (c.done_) return 1;
      // The answer comes later: nothing after this request is parsed before it ends.
      if (c.streaming_) http_parser_pause(p, 1);
      return 0;
    }
    c.finish_request();
    // A request that ends the connection stops the parse: nothing after it is read.
    return c.done_ ? 1 : 0;
  }

  Parser(ServerConn* owner) : conn(owner) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
    http_parser_settings_init(&settings);
    settings.on_message_begin = &on_message_begin;
    settings.on_url = &on_url;
    settings.on_header_field = &on_header_field;
    settings.on_header_value = &on_header_value;
    settings.on_headers_complete = &on_headers_complete;
    settings.on_body = &on_body;
    settings.on_message_complete = &on_message_complete;
  }
};

// ---- WebSocket (wslay) ----

struct ServerConn::WebSocket {
  wslay_event_context_ptr ctx = nullptr;
  ServerConn* conn = nullptr;
  std::string_view input;  // what feed() has not handed to wslay yet
  bool failed = false;

  static ssize_t recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
    auto* ws = static_cast<WebSocket*>(user);
    if (ws->input.empty()) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    size_t n = std::min(len, ws->input.size());
    std::memcpy(buf, ws->input.data(), n);
    ws->input.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }
  static ssize_t send(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
    // The owner's write path takes everything (it bounds its backlog itself).
    static_cast<WebSocket*>(user)->conn->handler_.on_output(
        std::string_view(reinterpret_cast<const char*>(data), len));
    return static_cast<ssize_t>(len);
  }
  static void on_msg(wslay_event_context_ptr ctx, const wslay_event_on_msg_recv_arg* arg, void* user) {
    auto* ws = static_cast<WebSocket*>(user);
    if (wslay_is_ctrl_frame(arg->opcode)) return;  // ping answered, close replied by wslay itself
    if (arg->opcode != WSLAY_TEXT_FRAME) {
      // RFC 7395 §3.2: XMPP goes in text frames only.
      wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, nullptr, 0);
      return;
    }
    if (!wslay_event_get_read_enabled(ctx) || ws->conn->done_) return;
    ws->conn->handler_.on_websocket_message(
        std::string_view(reinterpret_cast<const char*>(arg->msg), arg->msg_length));
  }

  explicit WebSocket(ServerConn* owner) : conn(owner) {
    wslay_event_callbacks callbacks{};
    callbacks.recv_callback = &recv;
    callbacks.send_callback = &send;
    callbacks.on_msg_recv_callback = &on_msg;
    if (wslay_event_context_server_init(&ctx, &callbacks, this) != 0) {
      ctx = nullptr;
      return;
    }
    wslay_event_config_set_max_recv_msg_length(ctx, conn->limits_.max_message_bytes);
  }
  ~WebSocket() {
    if (ctx) wslay_event_context_free(ctx);
  }
};

ServerConn::ServerConn(Handler& handler, const Limits& limits)
    : handler_(handler), limits_(limits), parser_(std::make_unique<Parser>(this)) {}

ServerConn::~ServerConn() = default;

bool ServerConn::feed(std::string_view bytes) {
  if (done_) return false;
  if (ws_) return feed_websocket(bytes);
  if (HTTP_PARSER_ERRNO(&parser_->parser) == HPE_PAUSED) {
    // A streamed exchange waits (its sink, or its answer); the owner stops
    // reading meanwhile, so this is at most what it had read already.
    if (pending_.size() + bytes.size() > limits_.max_header_bytes + kMaxPendingBytes) {
      abort_exchange(400, "too much input while the request waits");
      return false;
    }
    pending_.append(bytes);
    return true;
  }
  return parse(bytes);
}

bool ServerConn::parse(std::string_view bytes) {
  in_parse_ = true;
  size_t used = http_parser_execute(&parser_->parser, &parser_->settings, bytes.data(), bytes.size());
  in_parse_ = false;
  if (done_) return false;
  if (upgrade_wanted_) {
    upgrade();
    if (done_) return false;
    // Whatever the client sent after its handshake is already WebSocket.
    return feed_websocket(bytes.substr(std::min(used, bytes.size())));
  }
  if (HTTP_PARSER_ERRNO(&parser_->parser) == HPE_PAUSED) {
    pending_.assign(bytes.substr(std::min(used, bytes.size())));
    return true;
  }
  if (HTTP_PARSER_ERRNO(&parser_->parser) != HPE_OK) {
    if (streaming_) {
      abort_exchange(400, http_errno_description(HTTP_PARSER_ERRNO(&parser_->parser)));
      return false;
    }
    int status = parser_->refuse_status;
    if (status == 0) status = HTTP_PARSER_ERRNO(&parser_->parser) == HPE_INVALID_VERSION ? 505 : 400;
    refuse(status, http_errno_description(HTTP_PARSER_ERRNO(&parser_->parser)));
    return false;
  }
  return true;
}

void ServerConn::refuse(int status, std::string_view why) {
  Response r;
  r.status = status;
  r.headers.push_back(Header{"Content-Type", "text/plain; charset=utf-8"});
  r.body = std::string(why) + "\n";
  if (status == 426 || status == 505) {
    // Nothing more to read on this connection; Upgrade names what would do.
  }
  respond(r, true);
}

void ServerConn::respond(Response& r, bool close, bool head) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += status_text(r.status);
  out += "\r\n";
  for (const Header& h : r.headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (r.status != 101 && r.status != 204) {
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head && r.status != 101) out += r.body;
  handler_.on_output(out);
  if (close) done_ = true;
}

void ServerConn::abort_exchange(int status, std::string_view why) {
  bool started = response_started_;
  streaming_ = false;
  answered_ = false;
  body_paused_ = false;
  response_started_ = false;
  handler_.on_abort();
  if (started) {
    done_ = true;  // an answer was going out: it cannot be replaced
    return;
  }
  refuse(status, why);
}

void ServerConn::start_response(int status, const std::vector<Header>& headers, int64_t content_length) {
  if (!streaming_ || response_started_ || done_) return;
  response_started_ = true;
  response_head_ = request_.method == "HEAD";
  bool no_body = status < 200 || status == 204 || status == 304;
  response_chunked_ = content_length < 0 && !no_body;
  // Answered before its body was read: what is left of it is not read, so
  // the connection ends with the answer.
  close_after_ = (body_expected_ && !message_complete_) || !keep_alive_ ||
                 requests_ + 1 >= limits_.max_requests_per_connection;
  std::string out = "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += status_text(status);
  out += "\r\n";
  for (const Header& h : headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (content_length >= 0 && !no_body) {
    out += "Content-Length: ";
    out += std::to_string(content_length);
    out += "\r\n";
  } else if (response_chunked_) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  if (close_after_) out += "Connection: close\r\n";
  out += "\r\n";
  handler_.on_output(out);
}

void ServerConn::write_body(std::string_view bytes) {
  if (!streaming_ || !response_started_ || response_head_ || bytes.empty() || done_) return;
  if (!response_chunked_) {
    handler_.on_output(bytes);
    return;
  }
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  handler_.on_output(std::string_view(size, static_cast<size_t>(n)));
  handler_.on_output(bytes);
  handler_.on_output("\r\n");
}

bool ServerConn::end_response() {
  if (!streaming_ || done_) return !done_;
  if (!response_started_) start_response(500, {}, 0);
  if (response_chunked_ && !response_head_) handler_.on_output("0\r\n\r\n");
  ++requests_;
  response_started_ = false;
  body_paused_ = false;
  if (close_after_) {
    streaming_ = false;
    done_ = true;
    return false;
  }
  if (!message_complete_) {
    // Answered from on_head, no body expected: on_message_complete comes
    // within the same parse and ends the exchange.
    answered_ = true;
    return true;
  }
  streaming_ = false;
  if (in_parse_) return true;  // from on_body_end: the parse goes on by itself
  http_parser_pause(&parser_->parser, 0);
  std::string rest = std::move(pending_);
  pending_.clear();
  return rest.empty() ? true : parse(rest);
}

bool ServerConn::resume_body() {
  if (done_) return false;
  body_paused_ = false;
  if (in_parse_ || !streaming_ || message_complete_ || HTTP_PARSER_ERRNO(&parser_->parser) != HPE_PAUSED) return true;
  http_parser_pause(&parser_->parser, 0);
  std::string rest = std::move(pending_);
  pending_.clear();
  return rest.empty() ? true : parse(rest);
}

void ServerConn::finish_request() {
  ++requests_;
  Response r;
  handler_.on_request(request_, r);
  bool close = !http_should_keep_alive(&parser_->parser) || requests_ >= limits_.max_requests_per_connection;
  respond(r, close, request_.method == "HEAD");
}

void ServerConn::upgrade() {
  upgrade_wanted_ = false;
  ++requests_;
  const Request& rq = request_;
  if (!iequals(rq.header("Upgrade"), "websocket")) {
    // Another protocol (h2c...), or CONNECT: a server may ignore an Upgrade (RFC 9110
    // §7.8) and answer the request itself; the connection then closes, as
    // what follows on it is not known to be HTTP/1.1.
    Response r;
    handler_.on_request(rq, r);
    respond(r, true, rq.method == "HEAD");
    return;
  }
  if (rq.method != "GET") {
    Response r;
    r.status = 405;
    r.headers.push_back(Header{"Allow", "GET"});
    respond(r, true);
    return;
  }
  if (!has_token(rq.header("Connection"), "upgrade")) {
    refuse(400, "a WebSocket upgrade needs Connection: Upgrade");
    return;
  }
  if (rq.header("Sec-WebSocket-Version") != "13") {
    Response r;
    r.status = 426;
    r.headers.push_back(Header{"Sec-WebSocket-Version", "13"});
    respond(r, true);
    return;
  }
  std::string_view key = rq.header("Sec-WebSocket-Key");
  if (!valid_key(key)) {
    refuse(400, "missing or malformed Sec-WebSocket-Key");
    return;
  }
  std::string subprotocol;
  Response refusal;
  if (!handler_.on_websocket_request(rq, subprotocol, refusal)) {
    if (refusal.status < 400) refusal.status = 404;
    respond(refusal, true);
    return;
  }
  auto ws = std::make_unique<WebSocket>(this);
  if (ws->ctx == nullptr) {
    refuse(500, "out of memory");
    return;
  }
  Response r;
  r.status = 101;
  r.headers.push_back(Header{"Upgrade", "websocket"});
  r.headers.push_back(Header{"Connection", "Upgrade"});
  r.headers.push_back(Header{"Sec-WebSocket-Accept", websocket_accept(key)});
  if (!subprotocol.empty()) r.headers.push_back(Header{"Sec-WebSocket-Protocol", subprotocol});
  respond(r, false);
  // The request's memory goes: an idle WebSocket keeps only wslay's context.
  request_ = Request{};
  request_.headers.shrink_to_fit();
  field_ = std::string();
  parser_.reset();
  ws_ = std::move(ws);
  handler_.on_websocket_open();
}

bool ServerConn::feed_websocket(std::string_view bytes) {
  if (done_ || !ws_) return false;
  ws_->input = bytes;
  int rc = wslay_event_recv(ws_->ctx);
  ws_->input = {};
  if (rc != 0) {
    done_ = true;
    return false;
  }
  flush_websocket();
  return !done_;
}

void ServerConn::flush_websocket() {
  if (wslay_event_want_write(ws_->ctx) && wslay_event_send(ws_->ctx) != 0) done_ = true;
  // Both sides sent their close frames (or reading stopped on an error and
  // the close frame went out): the connection is over.
  if (!wslay_event_want_read(ws_->ctx) && !wslay_event_want_write(ws_->ctx)) done_ = true;
}

bool ServerConn::send_text(std::string_view text) {
  if (!ws_ || done_ || close_sent_ || wslay_event_get_close_sent(ws_->ctx)) return false;
  // A server's frame is unmasked: the header is 2, 4 or 10 bytes (RFC 6455
  // §5.2), written here so the frame goes out in the caller's order with
  // its bytes (wslay would queue a copy until its next send()). wslay never
  // holds a partial frame: its send callback takes everything.
  char header[10];
  size_t n = 2;
  header[0] = static_cast<char>(0x81);  // FIN, text
  if (text.size() < 126) {
    header[1] = static_cast<char>(text.size());
  } else if (text.size() <= 0xFFFF) {
    header[1] = 126;
    header[2] = static_cast<char>(text.size() >> 8);
    header[3] = static_cast<char>(text.size() & 0xFF);
    n = 4;
  } else {
    header[1] = 127;
    uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<char>((len >> (56 - 8 * i)) & 0xFF);
    n = 10;
  }
  std::string frame;
  frame.reserve(n + text.size());
  frame.append(header, n);
  frame.append(text);
  handler_.on_output(frame);
  return true;
}

void ServerConn::close_websocket(uint16_t code) {
  if (!ws_ || done_ || close_sent_ || wslay_event_get_close_sent(ws_->ctx)) return;
  // Written here, at once, like send_text: the owner may be closing from
  // inside a message callback (inside wslay_event_recv), and shuts the
  // socket down right after. wslay then writes nothing more.
  close_sent_ = true;
  const char frame[4] = {static_cast<char>(0x88), 2, static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  handler_.on_output(std::string_view(frame, 4));
  wslay_event_shutdown_write(ws_->ctx);
}

}  // namespace parley::http
