// parley/sdk/http.hpp - HTTP routes (module.h, issue 13: http_route, http_header,
// http_respond, http_write, http_end, http_read_pause, http_data_dir) in C++.
//
//   class ModFiles : public parley::Module, public parley::HttpHandler {
//     Result<void, std::string> start() override {
//       parley::HttpRoute r{"GET,HEAD", "/files"};
//       if (!parley::http_route(host(), r, *this)) return unexpected(std::string("no route"));
//       return {};
//     }
//     void on_http_request(const parley::HttpRequest& rq) override {
//       parley::Http http(host());
//       http.respond(rq.exchange, 200, {{"Content-Type", "text/plain"}}, 2);
//       http.write(rq.exchange, "ok");
//       http.end(rq.exchange);
//     }
//   };
//
// Every callback of an exchange runs on the loop of its connection, and every Http
// call for it must be made there (a callback, or a task posted to request.loop).
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/host.hpp"
#include "parley/sdk/module_base.hpp"

namespace parley {

// A request's head, valid for the call only.
struct HttpRequest {
  uint64_t exchange = 0;
  std::string_view method, target, path, query, host, peer_ip;
  int64_t content_length = -1;  // -1: none given
  uint32_t port = 0;
  bool secure = false;
  uint32_t loop = 0;  // the exchange's loop (post() there to answer later)
};

// What a module implements for its routes. Exceptions are caught (logged); one
// from on_http_request answers 500.
class HttpHandler {
 public:
  virtual void on_http_request(const HttpRequest& request) = 0;
  // The body in order; `last` once complete (chunk may then be empty).
  virtual void on_http_body(uint64_t exchange, std::string_view chunk, bool last) {
    (void)exchange, (void)chunk, (void)last;
  }
  // Http::write returned false earlier: the backlog drained, write more.
  virtual void on_http_writable(uint64_t exchange) { (void)exchange; }
  // The exchange ended before Http::end (connection gone, body limit, stop).
  virtual void on_http_closed(uint64_t exchange) { (void)exchange; }

 protected:
  ~HttpHandler() = default;
};

struct HttpRoute {
  std::string methods;            // "GET,HEAD,PUT,OPTIONS"
  std::string prefix;             // "/upload"
  uint64_t max_body_bytes = 0;    // past it 413
  uint32_t port = 0;              // 0: every http listener
  std::string host;               // the Host header's name; empty: any
};

namespace detail {

inline int http_on_request(void*, void* arg, const parley_http_request* r) noexcept {
  try {
    HttpRequest rq;
    rq.exchange = r->exchange;
    rq.method = to_sv(r->method);
    rq.target = to_sv(r->target);
    rq.path = to_sv(r->path);
    rq.query = to_sv(r->query);
    rq.host = to_sv(r->host);
    rq.peer_ip = to_sv(r->peer_ip);
    rq.content_length = r->content_length;
    rq.port = r->port;
    rq.secure = r->secure != 0;
    rq.loop = r->loop;
    static_cast<HttpHandler*>(arg)->on_http_request(rq);
    return PARLEY_HANDLED;
  } catch (...) {
    return PARLEY_ERROR;
  }
}
inline void http_on_body(void*, void* arg, uint64_t exchange, parley_str chunk, int last) noexcept {
  try {
    static_cast<HttpHandler*>(arg)->on_http_body(exchange, to_sv(chunk), last != 0);
  } catch (...) {
  }
}
inline void http_on_writable(void*, void* arg, uint64_t exchange) noexcept {
  try {
    static_cast<HttpHandler*>(arg)->on_http_writable(exchange);
  } catch (...) {
  }
}
inline void http_on_closed(void*, void* arg, uint64_t exchange) noexcept {
  try {
    static_cast<HttpHandler*>(arg)->on_http_closed(exchange);
  } catch (...) {
  }
}

}  // namespace detail

inline bool supports_http(const Host& host) noexcept { return host.supports(PARLEY_HOST_ENTRY_END(http_data_dir)); }

// From start(): serves `route` with `handler` (which must outlive the module's
// start..stop). false if refused (no such host entry, bad prefix, a core path).
inline bool http_route(const Host& host, const HttpRoute& route, HttpHandler& handler) {
  if (!supports_http(host)) return false;
  parley_http_route r{};
  r.size = sizeof r;
  r.methods = detail::to_c(route.methods);
  r.prefix = detail::to_c(route.prefix);
  r.port = route.port;
  r.max_body_bytes = route.max_body_bytes;
  r.on_request = &detail::http_on_request;
  r.on_body = &detail::http_on_body;
  r.on_writable = &detail::http_on_writable;
  r.on_closed = &detail::http_on_closed;
  r.arg = &handler;
  r.host = detail::to_c(route.host);
  return host.api()->http_route(host.handle(), &r) == 1;
}

// The calls on an open exchange, on its loop.
class Http {
 public:
  explicit Http(const Host& host) noexcept : host_(host) {}
  std::optional<std::string> header(uint64_t exchange, std::string_view name) const {
    detail::StringSink s;
    if (host_.api()->http_header(host_.handle(), exchange, detail::to_c(name), s.sink()) != 1) return std::nullopt;
    return s.take();
  }
  // content_length -1: chunked.
  bool respond(uint64_t exchange, int status, const std::vector<std::pair<std::string, std::string>>& headers,
               int64_t content_length) const {
    std::string block;
    for (const auto& [name, value] : headers) block += name + ": " + value + "\r\n";
    return host_.api()->http_respond(host_.handle(), exchange, status, detail::to_c(block), content_length) == 1;
  }
  // 1: go on; 0: wait for on_http_writable; -1: not written (no such exchange).
  int write(uint64_t exchange, std::string_view bytes) const {
    return host_.api()->http_write(host_.handle(), exchange, detail::to_c(bytes));
  }
  bool end(uint64_t exchange) const { return host_.api()->http_end(host_.handle(), exchange) == 1; }
  // A whole answer at once.
  bool answer(uint64_t exchange, int status, std::vector<std::pair<std::string, std::string>> headers,
              std::string_view body) const {
    if (!respond(exchange, status, headers, static_cast<int64_t>(body.size()))) return false;
    write(exchange, body);
    return end(exchange);
  }
  // Stops (true) or resumes (false) the request body; resuming may deliver
  // what waited before it returns.
  bool pause_body(uint64_t exchange, bool paused) const {
    return host_.api()->http_read_pause(host_.handle(), exchange, paused ? 1 : 0) == 1;
  }
  std::string data_dir() const {
    detail::StringSink s;
    host_.api()->http_data_dir(host_.handle(), s.sink());
    return s.take();
  }

 private:
  const Host& host_;
};

}  // namespace parley
