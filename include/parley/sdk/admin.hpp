// parley/sdk/admin.hpp - service administration (issue 17, XEP-0133): who
// administers this host, its bound sessions, its account count, and a
// graceful shutdown. Free functions over a Host, as services.hpp's.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/host.hpp"

namespace parley {

// Whether the host has the issue 17 entries (every one below needs them).
inline bool supports_admin(const Host& host) noexcept { return host.supports(PARLEY_HOST_ENTRY_END(server_stop)); }

namespace detail {
inline const parley_host_api* admin_api(const Host& host) {
  if (!supports_admin(host)) detail::fail("parley: this host predates the service administration entries");
  return host.api();
}
}  // namespace detail

// `jid` (full or bare) is an administrator of this module's host (config `admins:`).
inline bool is_admin(const Host& host, std::string_view jid) {
  return detail::admin_api(host)->is_admin(host.handle(), detail::to_c(jid)) == 1;
}

// The bound sessions of this module's host, on every loop (a snapshot).
inline std::vector<Host::UserSession> host_sessions(const Host& host) {
  std::vector<Host::UserSession> out;
  detail::admin_api(host)->host_sessions(
      host.handle(),
      [](void* arg, parley_session_id id, parley_str full, int available, int priority) {
        static_cast<std::vector<Host::UserSession>*>(arg)->push_back(
            Host::UserSession{id, std::string(detail::to_sv(full)), available != 0, priority});
      },
      &out);
  return out;
}

// The number of accounts of this module's host: done(count, "") later on the
// calling loop, or done(-1, condition). Not called once the module stopped
// (the function is then not freed: a small leak at unload only, as for accounts).
using AccountCountFn = std::function<void(int64_t count, std::string_view condition)>;
inline void account_count(const Host& host, AccountCountFn done) {
  detail::admin_api(host)->account_count(
      host.handle(),
      [](void* arg, int64_t count, parley_str condition) {
        std::unique_ptr<AccountCountFn> fn(static_cast<AccountCountFn*>(arg));
        try {
          if (*fn) (*fn)(count, detail::to_sv(condition));
        } catch (...) {
        }
      },
      new AccountCountFn(std::move(done)));
}

// Asks the server to shut down gracefully (as SIGTERM), after this call.
inline void server_stop(const Host& host) { detail::admin_api(host)->server_stop(host.handle()); }

}  // namespace parley
