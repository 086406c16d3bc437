#include "core/modules/host_api_http.hpp"

#include <spdlog/spdlog.h>

#include <cstddef>
#include <filesystem>
#include <string>

#include "core/modules/module_instance.hpp"
#include "core/net/http_transport.hpp"
#include "core/server/server_context.hpp"

namespace parley::host_http {

namespace {

std::string_view sv(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

// The exchange, if it is open on the calling loop and belongs to `m`.
HttpTransport* exchange_of(parley_module* m, uint64_t exchange) {
  HttpTransport* t = HttpTransport::find_exchange(exchange);
  return t != nullptr && t->exchange_module() == m ? t : nullptr;
}

bool valid_prefix(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 256) return false;
  for (char c : p)
    if (c <= ' ' || c >= 127 || c == '?' || c == '#' || c == '%' || c == '\\') return false;
  // No dot segments: the prefix names a place, never a way out of one.
  return p.find("/./") == std::string_view::npos && p.find("/../") == std::string_view::npos &&
         !p.ends_with("/.") && !p.ends_with("/..");
}

}  // namespace

int http_route(parley_module* m, const parley_http_route* route) {
  if (m->started || route == nullptr || route->on_request == nullptr) return 0;
  if (route->size < offsetof(parley_http_route, host) + sizeof(parley_str)) return 0;
  std::string_view prefix = sv(route->prefix);
  if (!valid_prefix(prefix) || core_http_path(prefix)) {
    spdlog::error("module {}: cannot serve the HTTP path '{}'", m->library->name, prefix);
    return 0;
  }
  HttpRouteEntry entry;
  entry.instance = m;
  entry.prefix = std::string(prefix);
  entry.port = route->port;
  entry.max_body_bytes = route->max_body_bytes;
  entry.decl = *route;
  entry.decl.methods = {};
  entry.decl.prefix = {};
  entry.decl.host = {};
  for (char c : sv(route->host)) entry.host += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string_view methods = sv(route->methods);
  while (!methods.empty()) {
    size_t comma = methods.find(',');
    std::string_view item = methods.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      for (char c : item)
        if (c < 'A' || c > 'Z') return 0;
      entry.methods.emplace_back(item);
    }
    if (comma == std::string_view::npos) break;
    methods.remove_prefix(comma + 1);
  }
  if (entry.methods.empty()) return 0;
  for (const HttpRouteEntry& r : m->http_routes)
    if (r.prefix == entry.prefix && r.port == entry.port && r.host == entry.host) return 0;
  m->http_routes.push_back(std::move(entry));
  return 1;
}

int http_header(parley_module* m, uint64_t exchange, parley_str name, parley_sink out) {
  HttpTransport* t = exchange_of(m, exchange);
  if (t == nullptr) return 0;
  for (const http::Header& h : t->exchange_request().headers) {
    if (h.name.size() != name.len) continue;
    bool same = true;
    for (size_t i = 0; i < name.len && same; ++i) {
      char a = h.name[i], b = name.ptr[i];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
      same = a == b;
    }
    if (!same) continue;
    if (out.append) out.append(out.ctx, h.value.data(), h.value.size());
    return 1;
  }
  return 0;
}

int http_respond(parley_module* m, uint64_t exchange, int status, parley_str headers, int64_t content_length) {
  HttpTransport* t = exchange_of(m, exchange);
  return t ? t->module_respond(status, sv(headers), content_length) : 0;
}

int http_write(parley_module* m, uint64_t exchange, parley_str bytes) {
  HttpTransport* t = exchange_of(m, exchange);
  return t ? t->module_write(sv(bytes)) : -1;
}

int http_end(parley_module* m, uint64_t exchange) {
  HttpTransport* t = exchange_of(m, exchange);
  return t ? t->module_end() : 0;
}

int http_read_pause(parley_module* m, uint64_t exchange, int paused) {
  HttpTransport* t = exchange_of(m, exchange);
  return t ? t->module_pause(paused != 0) : 0;
}

int http_data_dir(parley_module* m, parley_sink out) {
  std::error_code ec;
  std::string dir = std::filesystem::absolute(m->ctx->config.data_dir, ec).string();
  if (ec) dir = m->ctx->config.data_dir;
  if (out.append) out.append(out.ctx, dir.data(), dir.size());
  return 1;
}

void drop_exchanges(parley_module* m) { HttpTransport::drop_exchanges(m); }

}  // namespace parley::host_http
