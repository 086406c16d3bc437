#include "core/modules/host_api_http_client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/http_client/http_client.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"

namespace parley::host_http_client {

namespace {

std::string_view sv(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

constexpr uint64_t kDefaultTimeoutMs = 30'000;
constexpr uint64_t kMaxTimeoutMs = 600'000;

parley_str c(const std::string& s) { return parley_str{s.data(), s.size()}; }

// The module's completion, on the loop: through the gate while the instance
// runs; once it stopped (the gate shut, or cancelled for its stop) with
// stopped = 1 and no state, so that only `arg` is freed.
void complete(parley_module* m, parley_http_client_fn done, void* arg, http_client::Response&& r) {
  parley_http_client_response view{sizeof(parley_http_client_response), static_cast<int>(r.status), c(r.body),
                                    c(r.error), 0};
  bool ran = m->gate.run([&] {
    try {
      done(m->state, arg, &view);
    } catch (...) {
      spdlog::error("module {}: exception escaped an HTTP request's completion", m->library->name);
    }
  });
  if (!ran) {
    static const std::string cancelled = "cancelled";
    view.status = 0;
    view.body = parley_str{nullptr, 0};
    view.error = c(cancelled);
    view.stopped = 1;
    try {
      done(nullptr, arg, &view);
    } catch (...) {
    }
  }
  m->http_requests_in_flight.fetch_sub(1);
}

}  // namespace

uint64_t http_request(parley_module* m, const parley_http_client_request* request, parley_http_client_fn done,
                      void* arg) {
  LoopContext* loop = LoopContext::current();
  if (loop == nullptr || request == nullptr || done == nullptr || m->ctx->shutting_down.load()) return 0;
  if (request->size < offsetof(parley_http_client_request, timeout_ms) + sizeof(uint64_t)) return 0;
  http_client::Request req;
  req.method = std::string(sv(request->method));
  req.url = std::string(sv(request->url));
  req.body = std::string(sv(request->body));
  std::string_view headers = sv(request->headers);
  while (!headers.empty()) {
    size_t end = headers.find("\r\n");
    std::string_view line = headers.substr(0, end);
    if (!line.empty()) req.headers.emplace_back(line);
    if (end == std::string_view::npos) break;
    headers.remove_prefix(end + 2);
  }
  req.timeout_ms = request->timeout_ms == 0 ? kDefaultTimeoutMs : std::min(request->timeout_ms, kMaxTimeoutMs);
  if (std::string why = http_client::check_request(req); !why.empty()) {
    spdlog::warn("module {}: HTTP request refused: {}", m->library->name, why);
    return 0;
  }
  if (!loop->http_client) {
    const auto& limits = m->ctx->config.limits;
    loop->http_client = std::make_unique<http_client::Client>(
        loop->loop.uv(), http_client::Limits{limits.http_client_max_requests, limits.http_client_max_response_bytes});
  }
  m->http_requests_in_flight.fetch_add(1);
  uint64_t id = loop->http_client->start(std::move(req), m, [m, done, arg](http_client::Response&& r) {
    complete(m, done, arg, std::move(r));
  });
  if (id == 0) {
    m->http_requests_in_flight.fetch_sub(1);
    spdlog::warn("module {}: HTTP request refused: {} in flight on this loop (limits.http_client_max_requests)",
                 m->library->name, loop->http_client->in_flight());
  }
  return id;
}

void drop_requests(LoopContext& loop, parley_module* m) {
  if (loop.http_client) loop.http_client->cancel_owner(m);
}

void close(LoopContext& loop) {
  if (loop.http_client) loop.http_client->close();
}

}  // namespace parley::host_http_client
