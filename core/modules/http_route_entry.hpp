// A module's HTTP route (issue 13, host entry http_route), as registered
// from start() and as the loops' module tables hold it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"

namespace parley {

struct HttpRouteEntry {
  parley_module* instance = nullptr;
  std::vector<std::string> methods;  // upper case
  std::string prefix;                // starts with '/'
  uint32_t port = 0;                 // 0: every http listener
  std::string host;                  // the Host header's name served; empty: any
  uint64_t max_body_bytes = 0;
  parley_http_route decl{};          // the callbacks and arg (strings not kept)

  bool allows(std::string_view method) const {
    for (const std::string& m : methods)
      if (m == method) return true;
    return false;
  }
  // The path is under the prefix: equal, or the prefix ends with '/', or the
  // path goes on with '/' ("/upload" serves "/upload/x", not "/uploads").
  bool matches(std::string_view path, uint32_t listener_port) const {
    if (port != 0 && port != listener_port) return false;
    if (!path.starts_with(prefix)) return false;
    return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
  }
};

}  // namespace parley
