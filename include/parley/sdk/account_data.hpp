// parley/sdk/account_data.hpp - a module's part in XEP-0227 export and import (issue 11):
// the ACCOUNT_EXPORT and ACCOUNT_IMPORT hooks and the account_data_* entries, as free
// functions over a Host (as admin.hpp's).
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
//
//   void on_export(const parley::Event& e) {
//     parley::AccountData data(host(), e);        // holds the request
//     host().keyval_get(user, "vcard", [this, data](auto r) {
//       if (r && r->found()) data.add(*host().parse(r->value()));
//       data.done("1 vCard");                     // or data.fail("...")
//     });
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/element.hpp"
#include "parley/sdk/event.hpp"
#include "parley/sdk/host.hpp"

namespace parley {

inline constexpr std::string_view kPieNs = "urn:xmpp:pie:0";

// Whether the host has the export/import entries (the hooks never run without them).
inline bool supports_account_data(const Host& host) noexcept {
  return host.supports(PARLEY_HOST_ENTRY_END(keyval_list));
}

// Every key of `user` in this module's keyval store with its value, in key order:
// done(items) later on the calling loop, or done(error condition). What an export needs
// of a module whose keys are not known in advance. false: refused (done never runs).
// Not called once the module stopped (the function is then not freed: a small leak at
// unload only, as for account_count).
using KeyvalListFn = std::function<void(Result<std::vector<std::pair<std::string, std::string>>, std::string>)>;
inline bool keyval_list(const Host& host, std::string_view user, KeyvalListFn done) {
  if (!supports_account_data(host)) return false;
  auto* fn = new KeyvalListFn(std::move(done));
  int r = host.api()->keyval_list(
      host.handle(), detail::to_c(user),
      [](void*, void* arg, const parley_map_result* result, parley_str error) {
        std::unique_ptr<KeyvalListFn> f(static_cast<KeyvalListFn*>(arg));
        try {
          if (!*f) return;
          if (result == nullptr) return (*f)(unexpected(std::string(detail::to_sv(error))));
          std::vector<std::pair<std::string, std::string>> items;
          items.reserve(result->count);
          for (size_t i = 0; i < result->count; ++i)
            items.emplace_back(std::string(detail::to_sv(result->items[i].key)),
                               std::string(detail::to_sv(result->items[i].value)));
          (*f)(std::move(items));
        } catch (...) {
        }
      },
      fn);
  if (r != 1) {
    delete fn;
    return false;
  }
  return true;
}

// One hold on an export or import request, taken during the hook: copyable (into store
// completions); the first done() or fail() ends it, later ones do nothing. A hold
// dropped without either ends with an error, so that a lost completion cannot hang the
// request.
class AccountData {
 public:
  AccountData(const Host& host, const Event& event) : s_(std::make_shared<State>()) {
    s_->host = &host;
    s_->request = event.session();
    s_->held = supports_account_data(host) && host.api()->account_data_hold(host.handle(), s_->request) == 1;
  }
  bool held() const noexcept { return s_->held; }
  uint64_t request() const noexcept { return s_->request; }
  // Export: adds a copy of `element` to the account's <user/>.
  bool add(const ElementView& element) const {
    if (!s_->held || s_->ended) return false;
    return s_->host->api()->account_data_add(s_->host->handle(), s_->request, element.raw()) == 1;
  }
  // Export (ABI 1.6, supports_add_to()): a copy of `element` becomes a child of the
  // container <name xmlns='ns'/> of the account's <user/> (made at the first call): a
  // long list added a page at a time.
  bool supports_add_to() const noexcept { return s_->host->supports(PARLEY_HOST_ENTRY_END(account_data_add_to)); }
  bool add_to(std::string_view name, std::string_view ns, const ElementView& element) const {
    if (!s_->held || s_->ended || !supports_add_to()) return false;
    return s_->host->api()->account_data_add_to(s_->host->handle(), s_->request, detail::to_c(name), detail::to_c(ns),
                                                element.raw()) == 1;
  }
  // Export (ABI 1.8): `fn` runs on this loop once the account's bytes on their way to
  // parleyctl are under limits.max_account_part_bytes: ask before reading the next page
  // of a long list, so that an export of any size is paced by its reader. On an older
  // host, or if the host refuses, `fn` runs at once (unpaced, as before).
  void when_ready(std::function<void()> fn) const {
    if (s_->held && !s_->ended && s_->host->supports(PARLEY_HOST_ENTRY_END(account_data_when_ready))) {
      auto* f = new std::function<void()>(std::move(fn));
      int r = s_->host->api()->account_data_when_ready(
          s_->host->handle(), s_->request,
          [](void*, void* arg) {
            std::unique_ptr<std::function<void()>> g(static_cast<std::function<void()>*>(arg));
            try {
              (*g)();
            } catch (...) {
            }
          },
          f);
      if (r == 1) return;
      fn = std::move(*f);
      delete f;
    }
    fn();
  }
  void done(std::string_view summary = {}) const { s_->end(summary, {}); }
  void fail(std::string_view error) const { s_->end({}, error.empty() ? std::string_view("failed") : error); }

 private:
  struct State {
    const Host* host = nullptr;
    uint64_t request = 0;
    bool held = false;
    bool ended = false;
    void end(std::string_view summary, std::string_view error) {
      if (!held || ended) return;
      ended = true;
      host->api()->account_data_done(host->handle(), request, detail::to_c(summary), detail::to_c(error));
    }
  };
  std::shared_ptr<State> s_;
};

}  // namespace parley
