// parley/sdk/services.hpp - ABI 1.2 in C++: module services on a subdomain
// (register_service), work posted to loops and per-loop state (post, PerLoop),
// and iqs sent with an answer callback (send_iq).
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/element.hpp"
#include "parley/sdk/event.hpp"
#include "parley/sdk/host.hpp"
#include "parley/sdk/module_base.hpp"

namespace parley {

// A stanza for one of the module's services. Views are valid for the call only.
class ServiceStanza {
 public:
  ServiceStanza(const parley_host_api* api, const parley_route_request* r) noexcept : api_(api), r_(r) {}
  ElementRef stanza() const noexcept { return {api_, r_->stanza}; }
  std::string_view name() const { return stanza().name(); }
  std::string_view type() const { return stanza().attr("type").value_or(std::string_view()); }
  std::string_view from() const noexcept { return detail::to_sv(r_->from); }
  std::string_view to() const noexcept { return detail::to_sv(r_->to); }
  std::string_view domain() const noexcept { return detail::to_sv(r_->domain); }

 private:
  const parley_host_api* api_;
  const parley_route_request* r_;
};

namespace detail {

inline bool supports_1_2(const Host& host) noexcept { return host.supports_1_2(); }
inline const parley_host_api* api_1_2(const Host& host) {
  if (!supports_1_2(host)) fail("parley: this host predates module ABI 1.2");
  return host.api();
}

template <auto F>
int route_trampoline(void* state, const parley_route_request* request) noexcept {
  Module* mod = static_cast<Module*>(state);
  if (!mod || !request || !request->stanza) return PARLEY_ERROR;
  using C = typename handler_class<decltype(F)>::type;
  try {
    ServiceStanza stanza(mod->host().api(), request);
    C& self = static_cast<C&>(*mod);
    using R = decltype(std::invoke(F, self, stanza));
    if constexpr (std::is_void_v<R>) {
      std::invoke(F, self, stanza);
      return PARLEY_HANDLED;
    } else {
      return to_result(std::invoke(F, self, stanza));
    }
  } catch (...) {
    log_exception(mod->host(), "service handler", std::current_exception());
    return PARLEY_ERROR;
  }
}

// The host runs a posted task or an iq callback exactly once, never after
// the module stopped (unload and reload wait for them): the heap function is
// freed by the call. Only at shutdown may one never run (a small leak then).
inline void run_posted(void* /*state*/, void* arg) noexcept {
  std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
  try {
    (*fn)();
  } catch (...) {
  }
}

using IqReplyFn = std::function<void(std::optional<ElementView> reply)>;

struct IqWaiter {
  const parley_host_api* api;
  IqReplyFn fn;
};

inline void on_iq_reply(void* /*state*/, void* arg, const parley_element* reply) noexcept {
  std::unique_ptr<IqWaiter> waiter(static_cast<IqWaiter*>(arg));
  try {
    if (reply) waiter->fn(ElementView(waiter->api, reply));
    else waiter->fn(std::nullopt);
  } catch (...) {
  }
}

}  // namespace detail

// From start(): serves `domain` with member function F, `Outcome|void
// C::F(const ServiceStanza&)` (void: handled). Every stanza to the domain or to
// a JID at it comes there, on whichever loop routes it. false if refused.
template <auto F>
bool register_service(Module& module, std::string_view domain, std::string_view name) {
  const parley_host_api* api = detail::api_1_2(module.host());
  return api->register_route(module.host().handle(), detail::to_c(domain), detail::to_c(name),
                             &detail::route_trampoline<F>) == 1;
}

// The module services of this host (domain, name), for disco#items.
inline std::vector<std::pair<std::string, std::string>> host_services(const Host& host) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!detail::supports_1_2(host)) return out;
  host.api()->host_routes(
      host.handle(),
      [](void* arg, parley_str domain, parley_str name) {
        static_cast<std::vector<std::pair<std::string, std::string>>*>(arg)->emplace_back(
            std::string(detail::to_sv(domain)), std::string(detail::to_sv(name)));
      },
      &out);
  return out;
}

// Worker loops: how many, and which one runs the caller (-1: none).
inline uint32_t loop_count(const Host& host) { return detail::api_1_2(host)->loop_count(host.handle()); }
inline int32_t current_loop(const Host& host) { return detail::api_1_2(host)->current_loop(host.handle()); }

// Runs `fn` on worker loop `loop` (or the loop owning `session`), after what is
// queued there already. false: no such loop or session (fn dropped).
inline bool post(const Host& host, uint32_t loop, std::function<void()> fn) {
  auto* arg = new std::function<void()>(std::move(fn));
  if (detail::api_1_2(host)->post(host.handle(), loop, &detail::run_posted, arg) == 1) return true;
  delete arg;
  return false;
}
inline bool post_to_session(const Host& host, parley_session_id session, std::function<void()> fn) {
  auto* arg = new std::function<void()>(std::move(fn));
  if (detail::api_1_2(host)->post_to_session(host.handle(), session, &detail::run_posted, arg) == 1) return true;
  delete arg;
  return false;
}

// Routes `stanzas` (serialized) again from a task of the calling loop, after what is
// queued there: what a session held when it closed. Its SESSION_CLOSED hooks run while
// it is still in the session table (routed from there, a message for it would come back
// to it); from the task the stanzas find the resource gone and follow RFC 6121's rules
// (another resource, offline storage, an error). `each` (optional) runs before each
// route. false: not on a worker loop, or the loop is stopping (nothing is routed).
inline bool route_from_task(const Host& host, std::vector<std::string> stanzas, std::function<void()> each = {}) {
  const int32_t loop = current_loop(host);
  if (loop < 0) return false;
  const Host* h = &host;
  return post(host, static_cast<uint32_t>(loop), [h, stanzas = std::move(stanzas), each = std::move(each)] {
    for (const std::string& xml : stanzas) {
      auto stanza = h->parse(xml);
      if (!stanza) continue;
      if (each) each();
      h->route(std::move(*stanza));
    }
  });
}

// Sends an iq get/set (its 'from': the module's host, one of its services, or
// an account of its host) and calls `done` on this loop with the answer, or
// nullopt after `timeout`. The host sets the id. false: refused (done dropped).
inline bool send_iq(const Host& host, Element&& iq, std::chrono::milliseconds timeout, detail::IqReplyFn done) {
  if (!iq) detail::fail("parley: send_iq of a null element");
  auto* waiter = new detail::IqWaiter{host.api(), std::move(done)};
  if (detail::api_1_2(host)->send_iq(host.handle(), iq.release(), static_cast<uint64_t>(timeout.count()),
                                     &detail::on_iq_reply, waiter) == 1)
    return true;
  delete waiter;
  return false;
}

// A typed metric of this module (counter, gauge or histogram), declared in
// start(); recording it on a worker loop touches only that loop's memory.
class Metric {
 public:
  Metric() = default;
  Metric(const Host* host, uint32_t id) noexcept : host_(host), id_(id) {}
  explicit operator bool() const noexcept { return id_ != 0; }
  // counter: adds (>= 0); gauge: adds or subtracts; histogram: one observation.
  void record(int64_t value) const noexcept {
    if (id_ != 0 && host_ && detail::supports_1_2(*host_)) host_->api()->metric_record(host_->handle(), id_, value);
  }
  void add(int64_t delta = 1) const noexcept { record(delta); }

 private:
  const Host* host_ = nullptr;
  uint32_t id_ = 0;
};

// From start(): declares a metric; an empty Metric (records nothing) if refused.
inline Metric register_metric(const Host& host, std::string_view name, parley_metric_kind kind,
                              std::string_view help) {
  uint32_t id = detail::api_1_2(host)->metric_register(host.handle(), detail::to_c(name), kind, detail::to_c(help));
  return Metric(&host, id);
}

// State kept per worker loop, touched only by its own loop: no lock. Size it
// in start() (loops are fixed for the server's life); here() is the calling
// loop's element and may only be used on a worker loop.
template <class T>
class PerLoop {
 public:
  void init(const Host& host) { items_ = std::vector<T>(loop_count(host)); host_ = &host; }
  T& here() {
    int32_t loop = current_loop(*host_);
    if (loop < 0 || static_cast<size_t>(loop) >= items_.size()) detail::fail("parley: PerLoop::here() off the loops");
    return items_[static_cast<size_t>(loop)];
  }
  T& at(uint32_t loop) { return items_.at(loop); }
  size_t size() const noexcept { return items_.size(); }

 private:
  std::vector<T> items_;
  const Host* host_ = nullptr;
};

}  // namespace parley
