// parley/sdk/trampolines.hpp - the entry points the host calls (start,
// stop, save/restore state, hooks, IQ handlers): each catches every exception,
// so none crosses the C boundary.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <exception>
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "parley/module.h"
#include "parley/result.hpp"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/event.hpp"
#include "parley/sdk/host.hpp"
#include "parley/sdk/module_base.hpp"

namespace parley {

namespace detail {

inline Module* as_module(void* state) noexcept { return static_cast<Module*>(state); }

template <class F>
struct handler_class;
template <class R, class C, class A>
struct handler_class<R (C::*)(A)> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) const> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) noexcept> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) const noexcept> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (*)(C&, A)> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (*)(C&, A) noexcept> { using type = C; };

template <class R>
parley_result to_result(R r) {
  if constexpr (std::is_same_v<R, Outcome>) return static_cast<parley_result>(static_cast<int>(r));
  else return static_cast<parley_result>(r);
}

template <auto F>
int hook_trampoline(void* state, const parley_event_args* args) noexcept {
  using C = typename handler_class<decltype(F)>::type;
  Module* mod = as_module(state);
  if (!mod || !args) return PARLEY_ERROR;
  try {
    Event ev(mod->host().api(), args);
    C& self = static_cast<C&>(*mod);
    using R = decltype(std::invoke(F, self, ev));
    if constexpr (std::is_void_v<R>) {
      std::invoke(F, self, ev);
      return PARLEY_PASS;
    } else {
      return to_result(std::invoke(F, self, ev));
    }
  } catch (...) {
    log_exception(mod->host(), "hook", std::current_exception());
    return PARLEY_ERROR;
  }
}

template <auto F>
int iq_trampoline(void* state, const parley_iq_request* request) noexcept {
  using C = typename handler_class<decltype(F)>::type;
  Module* mod = as_module(state);
  if (!mod || !request || !request->iq) return PARLEY_ERROR;
  try {
    IqRequest req(mod->host().api(), request);
    C& self = static_cast<C&>(*mod);
    using R = decltype(std::invoke(F, self, req));
    if constexpr (std::is_void_v<R>) {
      std::invoke(F, self, req);
      return PARLEY_HANDLED;
    } else {
      return to_result(std::invoke(F, self, req));
    }
  } catch (...) {
    log_exception(mod->host(), "iq handler", std::current_exception());
    return PARLEY_ERROR;
  }
}

// Session slots across a reload (1.2): a class that names its slot type
// `SessionData` (what it keeps with set_session_slot<SessionData>) and has
//   Result<std::string, std::string> save_session_data(parley_session_id, const SessionData&)
//   Result<std::unique_ptr<SessionData>, std::string> restore_session_data(parley_session_id, std::string_view)
// gets both entries in its def; without SessionData, neither.
template <class C>
concept HasSessionData = requires { typename C::SessionData; };

template <class C>
struct Trampolines {
  static_assert(std::is_base_of_v<Module, C>, "a Parley module class derives from parley::Module");
  static_assert(std::is_default_constructible_v<C>, "a Parley module class is default-constructible");

  // The type of &C::f names the class that declared f: different from
  // Module's only when C (or a base between) overrides it.
  static constexpr bool has_save = !std::is_same_v<decltype(&C::save_state), decltype(&Module::save_state)>;
  static constexpr bool has_restore = !std::is_same_v<decltype(&C::restore_state), decltype(&Module::restore_state)>;
  static constexpr bool has_session_data = HasSessionData<C>;

  static int start(parley_module* m, const parley_host_api* api, void** state, parley_sink error) noexcept {
    if (!api || !state) return 1;
    if (api->abi_major != PARLEY_ABI_MAJOR || api->size < host_api_size_1_0) {
      sink_write(error, "the host's module ABI is incompatible with this module's");
      return 1;
    }
    C* mod = nullptr;
    try {
      mod = new C();
      static_cast<Module*>(mod)->host().attach(m, api);
      Result<void, std::string> r = static_cast<Module*>(mod)->start();
      if (!r) {
        sink_write(error, r.error().empty() ? std::string_view("start failed") : std::string_view(r.error()));
        destroy(mod);
        return 1;
      }
    } catch (...) {
      std::string what = "start threw a non-standard exception";
      try {
        std::rethrow_exception(std::current_exception());
      } catch (const std::exception& e) {
        what = std::string("start threw: ") + e.what();
      } catch (...) {
      }
      sink_write(error, what);
      destroy(mod);
      return 1;
    }
    *state = static_cast<Module*>(mod);
    return 0;
  }

  static void stop(void* state) noexcept {
    Module* mod = as_module(state);
    if (!mod) return;
    try {
      mod->stop();
    } catch (...) {
      log_exception(mod->host(), "stop", std::current_exception());
    }
    destroy(static_cast<C*>(mod));
  }

  static int save_state(void* state, parley_sink out) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    try {
      Result<std::string, std::string> r = mod->save_state();
      if (!r) {
        mod->host().error("save_state failed: " + r.error());
        return 1;
      }
      sink_write(out, *r);
      return 0;
    } catch (...) {
      log_exception(mod->host(), "save_state", std::current_exception());
      return 1;
    }
  }

  static int restore_state(void* state, parley_str bytes) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    try {
      Result<void, std::string> r = mod->restore_state(to_sv(bytes));
      if (!r) {
        mod->host().error("restore_state failed: " + r.error());
        return 1;
      }
      return 0;
    } catch (...) {
      log_exception(mod->host(), "restore_state", std::current_exception());
      return 1;
    }
  }

  // The old code's slot of one session, as bytes. Empty bytes mean "no slot"
  // (a null slot, or an empty save): restore then sets none.
  static int save_session_data(void* state, parley_session_id session, void* data, parley_sink out) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    if (!data) return 0;
    if constexpr (HasSessionData<C>) {
      using T = typename C::SessionData;
      static_assert(requires(C& c, parley_session_id id, const T& slot) {
        { c.save_session_data(id, slot) } -> std::same_as<Result<std::string, std::string>>;
      }, "SessionData needs Result<std::string, std::string> "
         "save_session_data(parley_session_id, const SessionData&)");
      try {
        const T& slot = *static_cast<const T*>(data);
        Result<std::string, std::string> r = static_cast<C&>(*mod).save_session_data(session, slot);
        if (!r) {
          mod->host().error("save_session_data failed: " + r.error());
          return 1;
        }
        sink_write(out, *r);
        return 0;
      } catch (...) {
        log_exception(mod->host(), "save_session_data", std::current_exception());
        return 1;
      }
    } else {
      return 1;
    }
  }

  // The new code's slot of one session, from the old code's bytes: set here
  // (the host allows session_set_data in this call, off the session's loop).
  static int restore_session_data(void* state, parley_session_id session, parley_str bytes) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    if (bytes.len == 0) return 0;
    if constexpr (HasSessionData<C>) {
      using T = typename C::SessionData;
      static_assert(requires(C& c, parley_session_id id, std::string_view b) {
        { c.restore_session_data(id, b) } -> std::same_as<Result<std::unique_ptr<T>, std::string>>;
      }, "SessionData needs Result<std::unique_ptr<SessionData>, std::string> "
         "restore_session_data(parley_session_id, std::string_view)");
      try {
        Result<std::unique_ptr<T>, std::string> r =
            static_cast<C&>(*mod).restore_session_data(session, to_sv(bytes));
        if (!r) {
          mod->host().error("restore_session_data failed: " + r.error());
          return 1;
        }
        if (!*r) return 0;  // the module keeps no slot for this session
        if (!mod->host().set_session_slot<T>(session, std::move(*r))) {
          mod->host().error("restore_session_data: the host refused the slot");
          return 1;
        }
        return 0;
      } catch (...) {
        log_exception(mod->host(), "restore_session_data", std::current_exception());
        return 1;
      }
    } else {
      return 1;
    }
  }

 private:
  static void destroy(C* mod) noexcept {
    if (!mod) return;
    static_cast<Module*>(mod)->host().forget_all();
    try {
      delete mod;
    } catch (...) {
    }
  }
};

}  // namespace detail

}  // namespace parley
