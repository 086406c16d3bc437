// http::ServerConn: requests, limits and bad requests (the right 4xx), any
// split of the input, and WebSocket frames (RFC 6455) after an upgrade.
#include "http/server_conn.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley::http;

namespace {

struct Recorder : ServerConn::Handler {
  std::vector<Request> requests;
  std::vector<std::string> messages;
  std::string output;
  bool opened = false;
  bool accept_ws = true;

  void on_request(const Request& request, Response& response) override {
    requests.push_back(request);
    response.status = request.path == "/missing" ? 404 : 200;
    response.body = "hello " + request.path;
  }
  bool on_websocket_request(const Request& request, std::string& subprotocol, Response& refusal) override {
    if (!accept_ws || !has_token(request.header("Sec-WebSocket-Protocol"), "xmpp")) {
      refusal.status = 400;
      return false;
    }
    subprotocol = "xmpp";
    return true;
  }
  void on_websocket_open() override { opened = true; }
  void on_websocket_message(std::string_view text) override { messages.emplace_back(text); }
  void on_output(std::string_view bytes) override { output.append(bytes); }
};

const char* kUpgrade =
    "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat, xmpp\r\n\r\n";

// A client frame (masked, RFC 6455 §5.3).
std::string client_frame(std::string_view payload, uint8_t opcode = 1, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 0; i < 8; ++i) f.push_back(static_cast<char>((uint64_t{payload.size()} >> (56 - 8 * i)) & 0xFF));
  }
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

int status_of(const std::string& output) {
  REQUIRE(output.starts_with("HTTP/1.1 "));
  return std::stoi(output.substr(9, 3));
}

// Feeds in pieces of `step` bytes; false once the connection is to close.
bool feed_split(ServerConn& c, std::string_view bytes, size_t step) {
  for (size_t i = 0; i < bytes.size(); i += step)
    if (!c.feed(bytes.substr(i, step))) return false;
  return true;
}

}  // namespace

TEST_CASE("a GET is answered with its length and the connection stays open") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK(c.feed("GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing:  v1 \r\n\r\n"));
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].method == "GET");
  CHECK(r.requests[0].path == "/a");
  CHECK(r.requests[0].target == "/a?x=1");
  CHECK(r.requests[0].header("x-thing") == "v1");
  CHECK(status_of(r.output) == 200);
  CHECK(r.output.find("Content-Length: 8\r\n") != std::string::npos);
  CHECK(r.output.ends_with("\r\n\r\nhello /a"));
  CHECK(r.output.find("Connection: close") == std::string::npos);
}

TEST_CASE("every split of two pipelined requests gives the same answers in order") {
  const std::string input = "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde";
  Limits limits;
  Recorder whole;
  ServerConn w(whole, limits);
  CHECK(w.feed(input));
  REQUIRE(whole.requests.size() == 2);
  for (size_t step = 1; step < input.size(); ++step) {
    Recorder r;
    ServerConn c(r, limits);
    CHECK(feed_split(c, input, step));
    REQUIRE(r.requests.size() == 2);
    CHECK(r.requests[1].body == "abcde");
    CHECK(r.output == whole.output);
  }
}

TEST_CASE("HEAD gets the headers without the body") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK(c.feed("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK(r.output.find("Content-Length: 8\r\n") != std::string::npos);
  CHECK(r.output.ends_with("\r\n\r\n"));
}

TEST_CASE("headers over the limit: 431 and close") {
  Limits limits;
  limits.max_header_bytes = 1024;
  Recorder r;
  ServerConn c(r, limits);
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  CHECK_FALSE(feed_split(c, big, 100));
  CHECK(status_of(r.output) == 431);
  CHECK(r.output.find("Connection: close") != std::string::npos);
  CHECK(r.requests.empty());
  CHECK(c.done());
  CHECK_FALSE(c.feed("GET / HTTP/1.1\r\n\r\n"));  // nothing more is read
}

TEST_CASE("the header limit counts the same however the headers are split") {
  Limits limits;
  limits.max_header_bytes = 200;
  std::string req = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 5; ++i) req += "X-Header-Name-" + std::to_string(i) + ": value\r\n";
  req += "\r\n";
  for (size_t step : {size_t{1}, size_t{3}, req.size()}) {
    Recorder r;
    ServerConn c(r, limits);
    CHECK(feed_split(c, req, step));
    CHECK(status_of(r.output) == 200);
  }
}

TEST_CASE("many small headers count too") {
  Limits limits;
  limits.max_header_bytes = 1024;
  Recorder r;
  ServerConn c(r, limits);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 300; ++i) many += "a:\r\n";
  CHECK_FALSE(c.feed(many + "\r\n"));
  CHECK(status_of(r.output) == 431);
}

TEST_CASE("a body over the limit: 413, by Content-Length or by chunks") {
  Limits limits;
  limits.max_body_bytes = 10;
  {
    Recorder r;
    ServerConn c(r, limits);
    CHECK_FALSE(c.feed("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"));
    CHECK(status_of(r.output) == 413);
  }
  {
    Recorder r;
    ServerConn c(r, limits);
    CHECK_FALSE(c.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"));
    CHECK(status_of(r.output) == 413);
    CHECK(r.requests.empty());
  }
  {
    Recorder r;
    ServerConn c(r, limits);
    CHECK(c.feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"));
    CHECK(status_of(r.output) == 200);
  }
}

TEST_CASE("malformed requests: 400 and close") {
  Limits limits;
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                          "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}) {
    Recorder r;
    ServerConn c(r, limits);
    CHECK_FALSE(c.feed(bad));
    CHECK(status_of(r.output) == 400);
    CHECK(c.done());
  }
}

TEST_CASE("HTTP/1.0 and Connection: close end after the answer") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK_FALSE(c.feed("GET / HTTP/1.0\r\n\r\n"));
  CHECK(status_of(r.output) == 200);
  CHECK(r.output.find("Connection: close") != std::string::npos);
  Recorder r2;
  ServerConn c2(r2, limits);
  CHECK_FALSE(c2.feed("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n"));
  CHECK(r2.requests.size() == 1);
}

TEST_CASE("requests per connection: the last is answered with Connection: close") {
  Limits limits;
  limits.max_requests_per_connection = 3;
  Recorder r;
  ServerConn c(r, limits);
  CHECK(c.feed("GET /1 HTTP/1.1\r\n\r\n"));
  CHECK(c.feed("GET /2 HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(c.feed("GET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n"));
  CHECK(r.requests.size() == 3);
  CHECK(r.output.find("Connection: close") != std::string::npos);
}

TEST_CASE("a WebSocket upgrade with the xmpp subprotocol: 101 with the RFC 6455 accept key") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK(c.feed(kUpgrade));
  CHECK(status_of(r.output) == 101);
  // RFC 6455 §1.3's example key and answer.
  CHECK(r.output.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != std::string::npos);
  CHECK(r.output.find("Sec-WebSocket-Protocol: xmpp\r\n") != std::string::npos);
  CHECK(r.opened);
  CHECK(c.websocket());
}

TEST_CASE("refused upgrades") {
  Limits limits;
  SUBCASE("no xmpp subprotocol: the handler's refusal") {
    Recorder r;
    ServerConn c(r, limits);
    std::string req = kUpgrade;
    req.replace(req.find("chat, xmpp"), 10, "chat");
    CHECK_FALSE(c.feed(req));
    CHECK(status_of(r.output) == 400);
    CHECK_FALSE(r.opened);
  }
  SUBCASE("another version: 426 naming 13") {
    Recorder r;
    ServerConn c(r, limits);
    std::string req = kUpgrade;
    req.replace(req.find("Version: 13"), 11, "Version: 8");
    CHECK_FALSE(c.feed(req));
    CHECK(status_of(r.output) == 426);
    CHECK(r.output.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
  }
  SUBCASE("a malformed key: 400") {
    Recorder r;
    ServerConn c(r, limits);
    std::string req = kUpgrade;
    req.replace(req.find("dGhlIHNhbXBsZSBub25jZQ=="), 24, "short");
    CHECK_FALSE(c.feed(req));
    CHECK(status_of(r.output) == 400);
  }
  SUBCASE("not a GET: 405") {
    Recorder r;
    ServerConn c(r, limits);
    std::string req = kUpgrade;
    req.replace(0, 3, "PUT");
    CHECK_FALSE(c.feed(req));
    CHECK(status_of(r.output) == 405);
  }
}

TEST_CASE("an Upgrade to another protocol is ignored: the request is answered, then the connection closes") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK_FALSE(c.feed("GET /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                     "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"));
  REQUIRE(r.requests.size() == 1);
  CHECK(status_of(r.output) == 200);
  CHECK(r.output.find("Connection: close") != std::string::npos);
  CHECK_FALSE(r.opened);
}

TEST_CASE("WebSocket messages: whole, fragmented, split anywhere; ping; close") {
  Limits limits;
  std::string frames = client_frame("<message/>") + client_frame("<pre", 1, false) + client_frame("sence/>", 0, true) +
                       client_frame("ping!", 9) + client_frame(std::string(300, 'x'));
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, frames.size()}) {
    Recorder r;
    ServerConn c(r, limits);
    REQUIRE(c.feed(kUpgrade));
    r.output.clear();
    CHECK(feed_split(c, frames, step));
    REQUIRE(r.messages.size() == 3);
    CHECK(r.messages[0] == "<message/>");
    CHECK(r.messages[1] == "<presence/>");
    CHECK(r.messages[2] == std::string(300, 'x'));
    // The pong, unmasked, with the ping's payload.
    CHECK(r.output == std::string("\x8a\x05ping!", 7));
    r.output.clear();
    CHECK_FALSE(c.feed(client_frame(std::string("\x03\xe8", 2), 8)));  // close 1000: replied, done
    CHECK(r.output.starts_with("\x88"));
    CHECK(c.done());
  }
}

TEST_CASE("WebSocket: binary frames, oversized messages and unmasked frames close the connection") {
  Limits limits;
  limits.max_message_bytes = 100;
  {
    Recorder r;
    ServerConn c(r, limits);
    REQUIRE(c.feed(kUpgrade));
    r.output.clear();
    c.feed(client_frame("bin", 2));
    CHECK(r.messages.empty());
    CHECK(r.output == std::string("\x88\x02\x03\xeb", 4));  // 1003 unsupported data
  }
  {
    Recorder r;
    ServerConn c(r, limits);
    REQUIRE(c.feed(kUpgrade));
    r.output.clear();
    c.feed(client_frame(std::string(101, 'a')));
    CHECK(r.messages.empty());
    CHECK(r.output == std::string("\x88\x02\x03\xf1", 4));  // 1009 message too big
  }
  {
    Recorder r;
    ServerConn c(r, limits);
    REQUIRE(c.feed(kUpgrade));
    r.output.clear();
    c.feed(std::string("\x81\x02hi", 4));  // a client frame must be masked
    CHECK(r.messages.empty());
    CHECK(r.output.starts_with("\x88"));
  }
}

TEST_CASE("send_text frames server messages unmasked with 7, 16 and 64-bit lengths") {
  Limits limits;
  Recorder r;
  ServerConn c(r, limits);
  CHECK_FALSE(c.send_text("early"));  // not a WebSocket yet
  REQUIRE(c.feed(kUpgrade));
  for (size_t n : {size_t{0}, size_t{125}, size_t{126}, size_t{65535}, size_t{65536}}) {
    r.output.clear();
    CHECK(c.send_text(std::string(n, 'z')));
    size_t header = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    REQUIRE(r.output.size() == header + n);
    CHECK(static_cast<uint8_t>(r.output[0]) == 0x81);
    if (n < 126) CHECK(static_cast<uint8_t>(r.output[1]) == n);
    if (header == 4) CHECK(static_cast<uint8_t>(r.output[1]) == 126);
    if (header == 10) CHECK(static_cast<uint8_t>(r.output[1]) == 127);
  }
  r.output.clear();
  c.close_websocket(1000);
  CHECK(r.output == std::string("\x88\x02\x03\xe8", 4));
  CHECK_FALSE(c.send_text("late"));
}

// ---- Streamed exchanges (module routes): the body in chunks, the answer later ----

namespace {

struct Streamer : ServerConn::Handler {
  ServerConn* conn = nullptr;
  uint64_t limit = 1000;
  bool pause_each_chunk = false;
  bool answer_in_head = false;
  std::vector<std::string> heads;
  std::string body;
  int chunks = 0;
  int ends = 0;
  int aborts = 0;
  std::string output;

  bool on_head(const Request& request) override {
    heads.push_back(request.method + " " + request.path);
    if (request.path == "/buffered") return false;
    conn->set_body_limit(limit);
    if (answer_in_head) {
      conn->start_response(403, {{"X-Why", "no"}}, 2);
      conn->write_body("no");
      conn->end_response();
    }
    return true;
  }
  void on_body(std::string_view chunk) override {
    ++chunks;
    body.append(chunk);
    if (pause_each_chunk) conn->pause_body();
  }
  void on_body_end() override { ++ends; }
  void on_abort() override { ++aborts; }
  void on_request(const Request&, Response& response) override { response.body = "buffered"; }
  bool on_websocket_request(const Request&, std::string&, Response&) override { return false; }
  void on_websocket_open() override {}
  void on_websocket_message(std::string_view) override {}
  void on_output(std::string_view bytes) override { output.append(bytes); }
};

}  // namespace

TEST_CASE("a streamed request: body in chunks, answer later, the next pipelined request waits for it") {
  Limits limits;
  Streamer s;
  ServerConn c(s, limits);
  s.conn = &c;
  CHECK(c.feed("PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc"));
  CHECK(c.exchange_open());
  CHECK(s.body == "abc");
  CHECK(c.feed("defGET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK(s.body == "abcdef");
  CHECK(s.ends == 1);
  CHECK(s.heads.size() == 1);  // /next waits for the answer
  CHECK(c.paused());
  CHECK(s.output.empty());
  c.start_response(201, {{"X-A", "1"}}, -1);
  c.write_body("hello");
  c.write_body("!");
  CHECK(c.end_response());
  CHECK(s.output.starts_with("HTTP/1.1 201 Created\r\n"));
  CHECK(s.output.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(s.output.find("\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n") != std::string::npos);
  CHECK(s.output.find("Connection: close") == std::string::npos);
  REQUIRE(s.heads.size() == 2);  // then the next one is parsed
  CHECK(s.heads[1] == "GET /next");
  CHECK(c.exchange_open());
}

TEST_CASE("a streamed request's body limit is its route's: 413 by Content-Length or by chunks") {
  Limits limits;
  limits.max_body_bytes = 1;  // the listener's default does not apply to a streamed route
  {
    Streamer s;
    s.limit = 5;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK_FALSE(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 6\r\n\r\n"));
    CHECK(status_of(s.output) == 413);
    CHECK(s.aborts == 1);
    CHECK(s.chunks == 0);
  }
  {
    Streamer s;
    s.limit = 5;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
    CHECK_FALSE(c.feed("3\r\ndef\r\n0\r\n\r\n"));
    CHECK(status_of(s.output) == 413);
    CHECK(s.aborts == 1);
    CHECK(s.body == "abc");
  }
  {
    Streamer s;
    s.limit = 6;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef"));
    CHECK(s.body == "abcdef");
    CHECK(s.aborts == 0);
  }
}

TEST_CASE("a paused body waits, whatever the split, and resumes in order") {
  const std::string input = "PUT /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
  for (size_t step : {1, 3, 7, 1000}) {
    Limits limits;
    Streamer s;
    s.pause_each_chunk = true;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(feed_split(c, input, step));
    // One chunk per resume: every chunk paused the body again.
    while (s.ends == 0) {
      int before = s.chunks;
      CHECK(c.paused());
      CHECK(c.resume_body());
      REQUIRE(s.chunks > before);
    }
    CHECK(s.body == "0123456789");
  }
}

TEST_CASE("an answer before the body was read closes the connection; HEAD gets no body") {
  Limits limits;
  {
    Streamer s;
    s.answer_in_head = true;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK_FALSE(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef"));
    CHECK(status_of(s.output) == 403);
    CHECK(s.output.find("Connection: close\r\n") != std::string::npos);
    CHECK(s.body.empty());
  }
  {
    // Without a body the connection stays: the next request is answered.
    Streamer s;
    s.answer_in_head = true;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"));
    CHECK(s.heads.size() == 2);
    CHECK(s.output.find("Connection: close") == std::string::npos);
  }
  {
    Streamer s;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("HEAD /f HTTP/1.1\r\n\r\n"));
    c.start_response(200, {}, 5);
    c.write_body("hello");
    CHECK(c.end_response());
    CHECK(s.output.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(s.output.ends_with("\r\n\r\n"));
  }
  {
    // The last request of a connection says Connection: close.
    Limits one;
    one.max_requests_per_connection = 1;
    Streamer s;
    ServerConn c(s, one);
    s.conn = &c;
    CHECK(c.feed("GET /f HTTP/1.1\r\n\r\n"));
    c.start_response(200, {}, 0);
    CHECK_FALSE(c.end_response());
    CHECK(s.output.find("Connection: close\r\n") != std::string::npos);
  }
}

TEST_CASE("Expect: 100-continue gets 100 Continue once the request is taken, not when it is refused") {
  Limits limits;
  {
    Streamer s;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    CHECK(s.output == "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(c.feed("abc"));
    CHECK(s.body == "abc");
  }
  {
    Streamer s;
    s.answer_in_head = true;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK_FALSE(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    CHECK(status_of(s.output) == 403);
  }
  {
    Streamer s;
    s.limit = 2;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK_FALSE(c.feed("PUT /up HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    CHECK(status_of(s.output) == 413);
  }
  {
    // Without a body there is nothing to wait for.
    Streamer s;
    ServerConn c(s, limits);
    s.conn = &c;
    CHECK(c.feed("GET /f HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
    CHECK(s.output.empty());
  }
}
