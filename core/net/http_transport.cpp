#include "core/net/http_transport.hpp"

#include <spdlog/spdlog.h>

#include "core/net/connection.hpp"
#include "core/server/server_context.hpp"
#include "xml/serializer.hpp"

namespace parley {

http::Limits http_limits(const config::LimitsConfig& limits) {
  http::Limits l;
  l.max_header_bytes = limits.http_max_header_bytes;
  l.max_body_bytes = limits.http_max_body_bytes;
  l.max_requests_per_connection = limits.http_max_requests_per_connection;
  // Above the stanza limit, so that an oversized stanza meets the stream
  // parser's policy-violation (a stream error) before wslay's close 1009.
  l.max_message_bytes = limits.max_stanza_bytes + 64 * 1024;
  return l;
}

namespace {

// A Host header we may echo in a URL: a name or an address, with a port.
bool plausible_host_header(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

HttpTransport::HttpTransport(ServerContext& ctx, Connection& conn, ConnectionOwner& owner,
                             const config::Listener& listener)
    : ctx_(ctx),
      conn_(conn),
      owner_(owner),
      listener_(listener),
      limits_(http_limits(ctx.config.limits)),
      server_(*this, limits_) {}

bool HttpTransport::feed(std::string_view bytes) {
  unsigned answered = server_.requests();
  bool go_on = server_.feed(bytes);
  // Before the upgrade the idle timeout counts from the last answered
  // request: bytes that never complete one (slowloris) do not extend it.
  if (go_on && !upgraded_ && server_.requests() != answered)
    conn_.arm_deadline(static_cast<uint64_t>(ctx_.config.limits.http_idle_timeout) * 1000);
  return go_on;
}

void HttpTransport::write(std::string_view bytes) {
  if (!upgraded_) return;  // nothing of the stream goes out before the upgrade
  std::vector<std::string> messages;
  out_.split(bytes, messages);
  for (const std::string& m : messages) server_.send_text(m);
}

void HttpTransport::closing() {
  if (upgraded_) server_.close_websocket(1000);
}

void HttpTransport::on_output(std::string_view bytes) { conn_.send_plain(bytes); }

void HttpTransport::on_request(const http::Request& request, http::Response& response) {
  bool json = request.path == "/.well-known/host-meta.json";
  bool known = json || request.path == "/.well-known/host-meta" || request.path == kWebSocketPath;
  if (!known) {
    response.status = 404;
    response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    response.body = "not found\n";
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.headers.push_back({"Allow", "GET, HEAD"});
    return;
  }
  if (request.path == kWebSocketPath) {
    // RFC 6455 §4.2.2: a plain GET here is told what to speak.
    response.status = 426;
    response.headers.push_back({"Upgrade", "websocket"});
    response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    response.body = "XMPP over WebSocket (RFC 7395): upgrade with the xmpp subprotocol\n";
    return;
  }
  host_meta(request, response, json);
}

void HttpTransport::host_meta(const http::Request& request, http::Response& response, bool json) {
  std::string_view host = request.header("Host");
  std::string authority;
  if (host.empty()) {
    authority = ctx_.config.hosts.front() + ":" + std::to_string(listener_.port);
  } else if (plausible_host_header(host)) {
    authority = std::string(host);
  } else {
    response.status = 400;
    response.body = "bad Host header\n";
    return;
  }
  std::string url = std::string(listener_.tls ? "wss://" : "ws://") + authority + std::string(kWebSocketPath);
  // Web clients fetch it from their own origin (XEP-0156 §3.3).
  response.headers.push_back({"Access-Control-Allow-Origin", "*"});
  if (json) {
    response.headers.push_back({"Content-Type", "application/json"});
    response.body = "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"" + url + "\"}]}\n";
    return;
  }
  response.headers.push_back({"Content-Type", "application/xrd+xml"});
  std::string body = "<?xml version='1.0' encoding='utf-8'?>\n"
                     "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                     "  <Link rel='urn:xmpp:alt-connections:websocket' href='";
  xml::escape_attr_to(body, url);
  body += "'/>\n</XRD>\n";
  response.body = std::move(body);
}

bool HttpTransport::on_websocket_request(const http::Request& request, std::string& subprotocol,
                                         http::Response& refusal) {
  if (request.path != kWebSocketPath) {
    refusal.status = 404;
    return false;
  }
  // RFC 7395 §3.1: only the xmpp subprotocol is spoken here.
  if (!http::has_token(request.header("Sec-WebSocket-Protocol"), "xmpp")) {
    refusal.status = 400;
    refusal.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    refusal.body = "the xmpp WebSocket subprotocol is required (RFC 7395)\n";
    return false;
  }
  subprotocol = "xmpp";
  return true;
}

void HttpTransport::on_websocket_open() {
  upgraded_ = true;
  spdlog::debug("c2s {}: WebSocket from {}", conn_.log_id(), conn_.peer_ip());
  owner_.on_connection_upgraded();
}

void HttpTransport::on_websocket_message(std::string_view text) {
  if (conn_.closing()) return;
  framing::Inbound in = framing::translate_in(text);
  switch (in.kind) {
    case framing::InKind::ignore:
      return;
    case framing::InKind::open:
    case framing::InKind::close:
      owner_.on_connection_bytes(in.translated);
      break;
    case framing::InKind::stanza:
    case framing::InKind::invalid:
      // An <open/> or <close/> in the wrong namespace reaches the stream as
      // it is: the c2s stream answers it as it would on TCP
      // (invalid-namespace before a header, an unknown element after one).
      owner_.on_connection_bytes(text);
      break;
  }
  if (!conn_.closing()) owner_.on_connection_message_end();
}

}  // namespace parley
