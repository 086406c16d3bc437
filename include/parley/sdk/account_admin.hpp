// parley/sdk/account_admin.hpp - h-admin (issue 17, XEP-0133): disabling accounts,
// listing a host's accounts, the addresses of a user's sessions, and the fold that asks
// other modules what they know of an account (events 27-28). Free functions over a
// Host, as admin.hpp's. Part of parley/module.hpp, the one header a module includes;
// not meant to be included on its own.
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

// The namespace of the events 27-28 payloads (<query/>, <answer/>).
inline constexpr const char* ns_admin_user = "urn:parley:admin-user:0";

// Whether the host has the h-admin entries (every function below needs them).
inline bool supports_account_admin(const Host& host) noexcept {
  return host.supports(PARLEY_HOST_ENTRY_END(user_addresses));
}

namespace detail {
inline const parley_host_api* account_admin_api(const Host& host) {
  if (!supports_account_admin(host)) detail::fail("parley: this host predates the account administration entries");
  return host.api();
}
template <class Fn>
Fn* take_fn(void* arg) {
  return static_cast<Fn*>(arg);
}
}  // namespace detail

// Disables or re-enables the account `user` (a localpart) of this module's host; a
// disabled account cannot log in (SASL <account-disabled/>) and its sessions end.
// done("") later on the calling loop, or a stanza error condition.
inline void set_account_disabled(const Host& host, std::string_view user, bool disabled,
                                 std::function<void(std::string_view condition)> done) {
  using Fn = std::function<void(std::string_view)>;
  detail::account_admin_api(host)->account_set_disabled(
      host.handle(), detail::to_c(user), disabled ? 1 : 0,
      [](void* arg, parley_str condition) {
        std::unique_ptr<Fn> fn(detail::take_fn<Fn>(arg));
        try {
          if (*fn) (*fn)(detail::to_sv(condition));
        } catch (...) {
        }
      },
      new Fn(std::move(done)));
}

enum class AccountListing { all = 0, disabled = 1 };
// The host's accounts (localparts, sorted bytewise): done(users, "") later on the
// calling loop, or done({}, condition). With `only` (a localpart): that account alone,
// if it is one of them (an existence check).
using AccountListFn = std::function<void(std::vector<std::string> users, std::string_view condition)>;
inline void list_accounts(const Host& host, AccountListing which, AccountListFn done, std::string_view only = {}) {
  detail::account_admin_api(host)->account_list(
      host.handle(), static_cast<int>(which), detail::to_c(only),
      [](void* arg, const parley_str* users, size_t count, parley_str condition) {
        std::unique_ptr<AccountListFn> fn(detail::take_fn<AccountListFn>(arg));
        std::vector<std::string> out;
        out.reserve(count);
        for (size_t i = 0; i < count; ++i) out.emplace_back(detail::to_sv(users[i]));
        try {
          if (*fn) (*fn)(std::move(out), detail::to_sv(condition));
        } catch (...) {
        }
      },
      new AccountListFn(std::move(done)));
}

// One bound session's full JID and remote address.
struct SessionAddress {
  std::string full_jid;
  std::string address;
};
// The addresses of the bound sessions of `bare_jid` (a user of this host), later on the
// calling loop.
using SessionAddressFn = std::function<void(std::vector<SessionAddress> sessions)>;
inline void user_addresses(const Host& host, std::string_view bare_jid, SessionAddressFn done) {
  detail::account_admin_api(host)->user_addresses(
      host.handle(), detail::to_c(bare_jid),
      [](void* arg, const parley_str* jids, const parley_str* addresses, size_t count) {
        std::unique_ptr<SessionAddressFn> fn(detail::take_fn<SessionAddressFn>(arg));
        std::vector<SessionAddress> out;
        out.reserve(count);
        for (size_t i = 0; i < count; ++i)
          out.push_back(SessionAddress{std::string(detail::to_sv(jids[i])), std::string(detail::to_sv(addresses[i]))});
        try {
          if (*fn) (*fn)(std::move(out));
        } catch (...) {
        }
      },
      new SessionAddressFn(std::move(done)));
}

}  // namespace parley
