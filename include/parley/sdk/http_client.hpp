// parley/sdk/http_client.hpp - the core's HTTP client in C++ (module.h, issue 14:
// http_request): a request made on a worker loop completes there, never blocking it.
//
//   parley::HttpClientRequest req;
//   req.url = "https://hooks.example.org/push";
//   req.headers.push_back({"Content-Type", "application/json"});
//   req.body = json;
//   parley::http_request(host(), req, [this](const parley::HttpClientResponse& r) {
//     if (r.ok()) ...;
//   });
//
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/host.hpp"

namespace parley {

struct HttpClientRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // no CR or LF in either
  std::string body;
  std::chrono::milliseconds timeout{30000};  // the whole exchange; capped by the host at 10 minutes
};

struct HttpClientResponse {
  int status = 0;     // 0 when no response came
  std::string body;
  std::string error;  // "" when a response came; else "timeout", "connect", "too-large", "cancelled", ...
  bool ok() const noexcept { return error.empty() && status >= 200 && status < 300; }
};

using HttpClientFn = std::function<void(const HttpClientResponse& response)>;

namespace detail {

inline void on_http_client_response(void* state, void* arg, const parley_http_client_response* r) noexcept {
  std::unique_ptr<HttpClientFn> fn(static_cast<HttpClientFn*>(arg));
  // The module stopped: its state is gone; only the callback is freed.
  if (r == nullptr || r->stopped != 0 || state == nullptr) return;
  try {
    HttpClientResponse response;
    response.status = r->status;
    response.body = std::string(to_sv(r->body));
    response.error = std::string(to_sv(r->error));
    (*fn)(response);
  } catch (...) {
  }
}

}  // namespace detail

// Whether the host has the HTTP client (issue 14).
inline bool supports_http_client(const Host& host) noexcept {
  return host.supports(PARLEY_HOST_ENTRY_END(http_request));
}

// Starts `request` on the calling worker loop; `done` runs there exactly once,
// later, unless the module stops first (then it is dropped unrun). Returns the
// request's id, or 0 if refused (not on a worker loop, a malformed request, the
// loop's limits.http_client_max_requests in flight, a host without the client).
inline uint64_t http_request(const Host& host, const HttpClientRequest& request, HttpClientFn done) {
  if (!supports_http_client(host)) return 0;
  std::string headers;
  for (const auto& [name, value] : request.headers) {
    // A CR or LF would make a header of its own: refused, never split.
    if (name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
      return 0;
    headers += name;
    headers += ": ";
    headers += value;
    headers += "\r\n";
  }
  parley_http_client_request req{sizeof(parley_http_client_request),
                                 detail::to_c(request.method),
                                 detail::to_c(request.url),
                                 detail::to_c(headers),
                                 detail::to_c(request.body),
                                 static_cast<uint64_t>(request.timeout.count() < 0 ? 0 : request.timeout.count())};
  auto* arg = new HttpClientFn(std::move(done));
  uint64_t id = host.api()->http_request(host.handle(), &req, &detail::on_http_client_response, arg);
  if (id == 0) delete arg;
  return id;
}

}  // namespace parley
