// parley/sdk/event.hpp - what a hook or IQ handler is given (Event,
// IqRequest) and what it returns (Outcome).
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/element.hpp"

namespace parley {

// Hook and handler outcomes; handlers may also return parley_result or void
// (void = PASS for a hook, HANDLED for an IQ handler).
enum class Outcome : int {
  pass = PARLEY_PASS,
  stop = PARLEY_STOP,
  handled = PARLEY_HANDLED,
  error = PARLEY_ERROR,
};
// One hook call. Views are valid for the call only.
class Event {
 public:
  Event(const parley_host_api* api, const parley_event_args* args) noexcept : api_(api), a_(args) {}
  parley_event type() const noexcept { return static_cast<parley_event>(a_->event); }
  parley_session_id session() const noexcept { return a_->session; }
  std::optional<ElementRef> stanza() const { return ref(a_->stanza); }
  std::optional<ElementRef> acc() const { return ref(a_->acc); }
  std::string_view user() const noexcept { return detail::to_sv(a_->user); }
  std::string_view host() const noexcept { return detail::to_sv(a_->host); }
  std::string_view jid() const noexcept { return detail::to_sv(a_->jid); }
  // user@host: the bare JID of the event's account, made with one allocation (at most).
  std::string user_bare() const {
    std::string bare;
    bare.reserve(user().size() + 1 + host().size());
    bare.append(user()).append(1, '@').append(host());
    return bare;
  }
  const parley_event_args* raw() const noexcept { return a_; }
  const parley_host_api* api() const noexcept { return api_; }
 private:
  std::optional<ElementRef> ref(parley_element* e) const {
    return e ? std::optional<ElementRef>(ElementRef(api_, e)) : std::nullopt;
  }
  const parley_host_api* api_;
  const parley_event_args* a_;
};

// One IQ addressed to a handler. Answer with exactly one result or error.
class IqRequest {
 public:
  IqRequest(const parley_host_api* api, const parley_iq_request* r) noexcept : api_(api), r_(r) {}
  ElementView iq() const noexcept { return {api_, r_->iq}; }
  std::optional<ElementView> payload() const { return iq().first_child(); }
  std::string_view type() const { return iq().attr("type").value_or(std::string_view()); }
  std::string_view from() const noexcept { return detail::to_sv(r_->from); }
  std::string_view to() const noexcept { return detail::to_sv(r_->to); }
  parley_session_id session() const noexcept {
    return PARLEY_STRUCT_HAS(parley_iq_request, r_, session) ? r_->session : 0;
  }
  const parley_iq_request* raw() const noexcept { return r_; }
 private:
  const parley_host_api* api_;
  const parley_iq_request* r_;
};

}  // namespace parley
