// parley/sdk/module_base.hpp - parley::Module, the base class of every
// module.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <string>
#include <string_view>

#include "parley/result.hpp"
#include "parley/sdk/host.hpp"

namespace parley {

// The base of every module. One instance per served host, made by the
// generated start trampoline; host() is usable from start() on.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // An error refuses to start (the host logs the text with the module's name).
  virtual Result<void, std::string> start() { return {}; }
  virtual void stop() {}
  // Hot reload: bytes from the old code's save_state reach the new code's
  // restore_state. Declared in the def only when the class overrides them.
  virtual Result<std::string, std::string> save_state() { return std::string(); }
  virtual Result<void, std::string> restore_state(std::string_view /*bytes*/) { return {}; }

  Host& host() noexcept { return host_; }
  const Host& host() const noexcept { return host_; }

 private:
  Host host_;
};

}  // namespace parley
