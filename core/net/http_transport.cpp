#include "core/net/http_transport.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <unordered_map>

#include "core/modules/module_instance.hpp"
#include "core/modules/module_tables.hpp"
#include "core/net/connection.hpp"
#include "core/net/http_metrics.hpp"
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

bool core_http_path(std::string_view path) {
  auto under = [&](std::string_view prefix) {
    return path.starts_with(prefix) && (path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/');
  };
  return under(kWebSocketPath) || under("/.well-known/") || under("/.well-known") || under("/metrics") ||
         under("/http-bind");
}

namespace {

// A module's answer going out: past the high mark of the connection's write
// backlog the module is told to wait; below the low mark it is told to go on.
constexpr size_t kWriteHighMark = 256 * 1024;
constexpr size_t kWriteLowMark = 64 * 1024;

// The open module exchanges of this loop's thread, by id. Ids carry the loop
// (above bit 48), so none is ever reused server-wide.
thread_local std::unordered_map<uint64_t, HttpTransport*> t_exchanges;
thread_local uint64_t t_next_exchange = 1;

bool valid_header_text(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// "Name: value\r\n" lines; false if malformed or naming what the host sets.
bool parse_header_lines(std::string_view text, std::vector<http::Header>& out) {
  while (!text.empty()) {
    size_t eol = text.find("\r\n");
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    for (char c : name)
      if (c <= ' ' || c >= 127) return false;
    if (!valid_header_text(value)) return false;
    if (ieq(name, "Content-Length") || ieq(name, "Transfer-Encoding") || ieq(name, "Connection")) return false;
    out.push_back(http::Header{std::string(name), std::string(value)});
  }
  return true;
}

std::string_view host_name(std::string_view host_header) {
  if (host_header.starts_with('[')) return host_header.substr(0, host_header.find(']') + 1);
  return host_header.substr(0, host_header.find(':'));
}

}  // namespace

// A module's exchange: the route (kept alive with the tables that hold it).
struct HttpTransport::Exchange {
  uint64_t id = 0;
  std::shared_ptr<const ModuleTables> tables;
  const HttpRouteEntry* route = nullptr;
  bool want_writable = false;
};

HttpTransport* HttpTransport::find_exchange(uint64_t id) {
  auto it = t_exchanges.find(id);
  return it == t_exchanges.end() ? nullptr : it->second;
}

void HttpTransport::drop_exchanges(parley_module* m) {
  std::vector<HttpTransport*> of_m;
  for (auto& [id, t] : t_exchanges)
    if (t->exchange_module() == m) of_m.push_back(t);
  for (HttpTransport* t : of_m) {
    t->finish_exchange(false);
    t->server_.kill();
    t->conn_.cut();
  }
}

parley_module* HttpTransport::exchange_module() const { return ex_ ? ex_->route->instance : nullptr; }

HttpTransport::~HttpTransport() {
  if (counted_) ctx_.http_connections.remove(conn_.peer_ip());
  finish_exchange(true);
  bosh_drop();
  (upgraded_ ? conn_.loop().metrics.connections_websocket : conn_.loop().metrics.connections_http).add(-1);
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
      server_(*this, limits_) {
  conn.loop().metrics.connections_http.add(1);
  size_t limit = ctx.config.limits.http_max_connections_per_ip;
  if (limit != 0) admitted_ = counted_ = ctx.http_connections.try_add(conn.peer_ip(), limit);
}

bool HttpTransport::feed(std::string_view bytes) {
  if (!admitted_) {
    // Over limits.http_max_connections_per_ip: told so at its first bytes
    // (after TLS, on https), then closed.
    server_.refuse_now(503, "too many connections from this address");
    return false;
  }
  unsigned answered = server_.requests();
  in_feed_ = true;
  bool go_on = server_.feed(bytes);
  in_feed_ = false;
  if (go_on) sync_reading();
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
  if (request.path == kBoshPath) {
    bosh_other(request, response);
    return;
  }
  if (request.path == kMetricsPath) {
    metrics(request, response);
    return;
  }
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

void HttpTransport::metrics(const http::Request& request, http::Response& response) {
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.headers.push_back({"Allow", "GET, HEAD"});
    return;
  }
  if (!metrics_allowed(ctx_.config, conn_.peer_ip())) {
    response.status = 403;
    response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    response.body = "not allowed from this address (metrics_allow)\n";
    return;
  }
  response.headers.push_back({"Content-Type", "text/plain; version=0.0.4; charset=utf-8"});
  response.headers.push_back({"Cache-Control", "no-store"});
  response.body = metrics_text(ctx_, *conn_.loop().modules);
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
  // XEP-0156: the BOSH endpoint too (XEP-0206).
  std::string bosh_url = std::string(listener_.tls ? "https://" : "http://") + authority + std::string(kBoshPath);
  // Web clients fetch it from their own origin (XEP-0156 §3.3).
  response.headers.push_back({"Access-Control-Allow-Origin", "*"});
  if (json) {
    response.headers.push_back({"Content-Type", "application/json"});
    response.body = "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"" + url +
                    "\"},{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"" + bosh_url + "\"}]}\n";
    return;
  }
  response.headers.push_back({"Content-Type", "application/xrd+xml"});
  std::string body = "<?xml version='1.0' encoding='utf-8'?>\n"
                     "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                     "  <Link rel='urn:xmpp:alt-connections:websocket' href='";
  xml::escape_attr_to(body, url);
  body += "'/>\n  <Link rel='urn:xmpp:alt-connections:xbosh' href='";
  xml::escape_attr_to(body, bosh_url);
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
  conn_.loop().metrics.connections_http.add(-1);
  conn_.loop().metrics.connections_websocket.add(1);
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

namespace parley {

// ---- Module routes (issue 13) ----

bool HttpTransport::on_head(const http::Request& request) {
  if (request.path == kBoshPath) return bosh_head(request);
  if (core_http_path(request.path)) return false;  // answered whole by on_request
  std::shared_ptr<const ModuleTables> tables = conn_.loop().modules;
  const HttpRouteEntry* route = nullptr;
  std::string_view name = host_name(request.header("Host"));
  for (const HttpRouteEntry& r : tables->http_routes) {
    if (!r.matches(request.path, listener_.port)) continue;
    if (!r.host.empty() && !ieq(r.host, name)) continue;
    route = &r;
    break;
  }
  if (route == nullptr) return false;  // 404
  if (!route->allows(request.method)) {
    std::string allow;
    for (const std::string& m : route->methods) allow += (allow.empty() ? "" : ", ") + m;
    // Readable by a web client of another origin (an upload from Converse.js), as the
    // module's own answers are: the status alone, nothing the route keeps.
    answer_now(405,
               {{"Allow", allow}, {"Access-Control-Allow-Origin", "*"}, {"Content-Type", "text/plain; charset=utf-8"}},
               "method not allowed\n");
    return true;
  }
  server_.set_body_limit(route->max_body_bytes);
  // The route's body limit before the module hears of the request.
  std::string_view declared = request.header("Content-Length");
  if (!declared.empty() && std::strtoull(std::string(declared).c_str(), nullptr, 10) > route->max_body_bytes) {
    answer_now(413, {{"Access-Control-Allow-Origin", "*"}, {"Content-Type", "text/plain; charset=utf-8"}},
               "request body too large\n");
    return true;
  }
  parley_module* m = route->instance;
  ex_ = std::make_unique<Exchange>();
  ex_->id = (uint64_t{conn_.loop().loop.index() + 1} << 48) | t_next_exchange++;
  ex_->tables = std::move(tables);
  ex_->route = route;
  t_exchanges[ex_->id] = this;
  m->http_in_flight.fetch_add(1);
  uint64_t id = ex_->id;

  std::string_view target = request.target;
  size_t q = target.find('?');
  parley_http_request req{};
  req.size = sizeof req;
  req.exchange = id;
  req.method = {request.method.data(), request.method.size()};
  req.target = {request.target.data(), request.target.size()};
  req.path = {request.path.data(), request.path.size()};
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  req.query = {query.data(), query.size()};
  std::string_view host = request.header("Host");
  req.host = {host.data(), host.size()};
  req.peer_ip = {conn_.peer_ip().data(), conn_.peer_ip().size()};
  std::string_view length = request.header("Content-Length");
  req.content_length = length.empty() ? -1 : static_cast<int64_t>(std::strtoull(std::string(length).c_str(), nullptr, 10));
  req.port = listener_.port;
  req.secure = listener_.tls ? 1 : 0;
  req.loop = conn_.loop().loop.index();
  int rc = PARLEY_ERROR;
  bool ran = m->gate.run([&] {
    try {
      rc = route->decl.on_request(m->state, route->decl.arg, &req);
    } catch (...) {
      spdlog::error("module {}: exception escaped an HTTP request handler", m->library->name);
      rc = PARLEY_ERROR;
    }
  });
  if ((!ran || rc == PARLEY_ERROR) && ex_ && ex_->id == id) module_failed();
  progress();
  return true;
}

void HttpTransport::on_body(std::string_view chunk) {
  if (bosh_open_) {
    bosh_body_.append(chunk);  // within the body limit (set_body_limit)
    return;
  }
  if (!ex_) return;
  progress();
  const HttpRouteEntry* route = ex_->route;
  if (route->decl.on_body == nullptr) return;
  parley_module* m = route->instance;
  uint64_t id = ex_->id;
  bool ran = m->gate.run([&] {
    try {
      route->decl.on_body(m->state, route->decl.arg, id, parley_str{chunk.data(), chunk.size()}, 0);
    } catch (...) {
      spdlog::error("module {}: exception escaped an HTTP body handler", m->library->name);
    }
  });
  if (!ran && ex_ && ex_->id == id) module_failed();
}

void HttpTransport::on_body_end() {
  if (bosh_open_) {
    bosh_body_end();
    return;
  }
  if (!ex_) return;
  const HttpRouteEntry* route = ex_->route;
  if (route->decl.on_body == nullptr) return;
  parley_module* m = route->instance;
  uint64_t id = ex_->id;
  bool ran = m->gate.run([&] {
    try {
      route->decl.on_body(m->state, route->decl.arg, id, parley_str{nullptr, 0}, 1);
    } catch (...) {
      spdlog::error("module {}: exception escaped an HTTP body handler", m->library->name);
    }
  });
  if (!ran && ex_ && ex_->id == id) module_failed();
}

void HttpTransport::on_abort() {
  finish_exchange(true);
  bosh_drop();
}

void HttpTransport::answer_now(int status, std::vector<http::Header> headers, std::string_view body) {
  server_.start_response(status, headers, static_cast<int64_t>(body.size()));
  server_.write_body(body);
  server_.end_response();
}

void HttpTransport::module_failed() {
  // The exchange cannot go on: a 500 if nothing was written yet.
  finish_exchange(false);
  if (!server_.response_started()) {
    answer_now(500, {{"Content-Type", "text/plain; charset=utf-8"}}, "internal server error\n");
    settle(!server_.done());
  } else {
    server_.kill();
    conn_.cut();
  }
}

void HttpTransport::finish_exchange(bool tell_module) {
  if (!ex_) return;
  std::unique_ptr<Exchange> ex = std::move(ex_);
  t_exchanges.erase(ex->id);
  parley_module* m = ex->route->instance;
  if (tell_module && ex->route->decl.on_closed != nullptr) {
    m->gate.run([&] {
      try {
        ex->route->decl.on_closed(m->state, ex->route->decl.arg, ex->id);
      } catch (...) {
        spdlog::error("module {}: exception escaped an HTTP close handler", m->library->name);
      }
    });
  }
  m->http_in_flight.fetch_sub(1);
}

int HttpTransport::module_respond(int status, std::string_view headers, int64_t content_length) {
  if (!ex_ || server_.response_started() || status < 200 || status > 599) return 0;
  std::vector<http::Header> parsed;
  if (!parse_header_lines(headers, parsed)) return 0;
  server_.start_response(status, parsed, content_length);
  progress();
  return 1;
}

int HttpTransport::module_write(std::string_view bytes) {
  if (!ex_ || !server_.response_started() || conn_.closing()) return -1;
  server_.write_body(bytes);
  progress();
  if (conn_.write_backlog() > kWriteHighMark) {
    ex_->want_writable = true;
    return 0;
  }
  return 1;
}

int HttpTransport::module_end() {
  if (!ex_) return 0;
  finish_exchange(false);
  bool go_on = server_.end_response();
  settle(go_on);
  return 1;
}

int HttpTransport::module_pause(bool paused) {
  if (!ex_) return 0;
  if (paused) {
    server_.pause_body();
    sync_reading();
    return 1;
  }
  bool go_on = server_.resume_body();
  settle(go_on);
  return 1;
}

void HttpTransport::settle(bool go_on) {
  if (!go_on || server_.done()) {
    // Inside feed() its result says so; outside, the connection ends here.
    if (!in_feed_) conn_.end_after_flush();
    return;
  }
  progress();
  sync_reading();
}

void HttpTransport::sync_reading() {
  if (in_feed_) return;  // feed() syncs once it returns
  bool paused = server_.paused();
  if (paused && !reading_held_) {
    reading_held_ = true;
    conn_.suspend_reading();
  } else if (!paused && reading_held_) {
    reading_held_ = false;
    conn_.resume_reading();
  }
}

void HttpTransport::progress() {
  if (!upgraded_) conn_.arm_deadline(static_cast<uint64_t>(ctx_.config.limits.http_idle_timeout) * 1000);
}

void HttpTransport::on_written() {
  if (!ex_ || !ex_->want_writable || conn_.write_backlog() > kWriteLowMark) return;
  ex_->want_writable = false;
  const HttpRouteEntry* route = ex_->route;
  if (route->decl.on_writable == nullptr) return;
  parley_module* m = route->instance;
  uint64_t id = ex_->id;
  bool ran = m->gate.run([&] {
    try {
      route->decl.on_writable(m->state, route->decl.arg, id);
    } catch (...) {
      spdlog::error("module {}: exception escaped an HTTP writable handler", m->library->name);
    }
  });
  if (!ran && ex_ && ex_->id == id) module_failed();
}

}  // namespace parley
