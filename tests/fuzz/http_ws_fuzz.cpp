// libFuzzer target for the HTTP listener's input path: http::ServerConn
// (http_parser, the header/body/request limits, the WebSocket handshake,
// wslay's frames) and RFC 7395 framing (framing::translate_in) of every
// message it yields, with the server side's Outbound splitter fed what a
// message turned into.
//
// Streamed exchanges (module routes) too: paths under /s are taken at their
// head, their body paused after every chunk (/sp) and resumed by the driver,
// or answered at the head (/sa); the answer is chunked.
//
// Input: byte 0 = chunk size (1..256), then the bytes of the connection.
// Checks, besides "no crash, no sanitizer report":
//  - feeding in chunks gives the same HTTP output (up to the WebSocket upgrade) and the same messages
//    as feeding whole (after the upgrade, which control frames wslay still writes depends on when it was
//    asked to write: a pong queued before a close may go or be dropped, both valid by RFC 6455);
//  - once feed() returned false, nothing more is output;
//  - an <open/> translation is a well-formed stream header the splitter reads back as one <open/>.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/xmpp_framing.hpp"
#include "http/server_conn.hpp"

using namespace parley;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http_ws_fuzz: %s\n", what);
  std::abort();
}

struct Recorder : http::ServerConn::Handler {
  http::ServerConn* conn = nullptr;
  // Streamed exchanges (module routes): /s... takes the body in chunks (body
  // limit 300) and answers chunked at its end; /sp pauses the body after every
  // chunk (the driver resumes it); /sa answers at the head.
  std::string path;
  size_t body = 0;
  std::string output;
  size_t http_bytes = std::string::npos;  // output before the WebSocket, once upgraded
  std::vector<std::string> messages;
  std::string_view http_output() const { return std::string_view(output).substr(0, http_bytes); }
  bool closed = false;

  bool on_head(const http::Request& request) override {
    if (!request.path.starts_with("/s")) return false;
    path = request.path;
    body = 0;
    conn->set_body_limit(300);
    if (path.starts_with("/sa")) {
      conn->start_response(403, {}, 2);
      conn->write_body("no");
      conn->end_response();
    }
    return true;
  }
  void on_body(std::string_view chunk) override {
    body += chunk.size();
    if (path.starts_with("/sp")) conn->pause_body();
  }
  void on_body_end() override {
    conn->start_response(200, {{"X-Path", path}}, -1);
    conn->write_body(std::to_string(body));
    conn->write_body(path);
    conn->end_response();
  }
  void on_request(const http::Request& request, http::Response& response) override {
    response.status = request.path == "/" ? 200 : 404;
    response.body = request.body;
  }
  bool on_websocket_request(const http::Request& request, std::string& subprotocol, http::Response& refusal) override {
    if (!http::has_token(request.header("Sec-WebSocket-Protocol"), "xmpp")) {
      refusal.status = 400;
      return false;
    }
    subprotocol = "xmpp";
    return true;
  }
  void on_websocket_open() override { http_bytes = output.size(); }
  void on_websocket_message(std::string_view text) override {
    messages.emplace_back(text);
    framing::Inbound in = framing::translate_in(text);
    if (in.kind == framing::InKind::open) {
      framing::Outbound out;
      std::vector<std::string> back;
      out.split(in.translated, back);
      if (back.size() != 1 || !back[0].starts_with("<open ")) fail("an <open/> translation does not read back");
    }
    framing::Outbound out;
    std::vector<std::string> split;
    out.split(text, split);  // server-side input in practice: only no crash here
  }
  void on_output(std::string_view bytes) override {
    if (closed) fail("output after the connection was done");
    output.append(bytes);
  }
};

struct Run {
  http::Limits limits;
  Recorder recorder;
  http::ServerConn conn{recorder, limits};
  Run() {
    recorder.conn = &conn;
    limits.max_header_bytes = 2048;
    limits.max_body_bytes = 512;
    limits.max_requests_per_connection = 8;
    limits.max_message_bytes = 4096;
  }
  void feed(std::string_view data, size_t chunk) {
    for (size_t i = 0; i < data.size() && !recorder.closed; i += chunk) {
      if (!conn.feed(data.substr(i, chunk))) recorder.closed = true;
      // A paused body is resumed at once (the sink drained): each resume
      // delivers at least a chunk or ends the exchange.
      for (int n = 0; !recorder.closed && conn.paused() && conn.exchange_open() && n < 100000; ++n)
        if (!conn.resume_body()) recorder.closed = true;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t chunk = static_cast<size_t>(data[0]) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Run whole;
  whole.feed(input, input.size() + 1);
  Run pieces;
  pieces.feed(input, chunk);
  if (whole.recorder.http_output() != pieces.recorder.http_output()) {
    if (std::getenv("HTTP_WS_FUZZ_DUMP")) {
      std::fprintf(stderr, "whole (%zu):\n", whole.recorder.output.size());
      std::fwrite(whole.recorder.output.data(), 1, whole.recorder.output.size(), stderr);
      std::fprintf(stderr, "\npieces of %zu (%zu):\n", chunk, pieces.recorder.output.size());
      std::fwrite(pieces.recorder.output.data(), 1, pieces.recorder.output.size(), stderr);
    }
    fail("output depends on the split");
  }
  if (whole.recorder.messages != pieces.recorder.messages) fail("messages depend on the split");
  return 0;
}
