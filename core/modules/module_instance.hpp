// A loaded module library and its per-host instances, as the host sees them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "parley/module.h"

namespace parley {

class ServerContext;
class ModuleManager;
struct ModuleTimer;

// One dlopen()ed copy of a module's .so.
struct ModuleLibrary {
  ~ModuleLibrary();
  std::string name;
  std::string path;       // where it was found
  void* handle = nullptr; // dlopen handle of the private copy
  const parley_module_def* def = nullptr;
};

}  // namespace parley

// The opaque handle modules get: one module started for one host.
struct parley_module {
  parley::ModuleManager* manager = nullptr;
  parley::ServerContext* ctx = nullptr;
  std::shared_ptr<parley::ModuleLibrary> library;
  std::string host;
  YAML::Node options;  // validated against the def's declared options
  void* state = nullptr;
  bool started = false;
  // Held while a completion (storage, accounts) runs the module's code on a
  // loop, and while the instance is marked stopped: a completion either ends
  // before stop() begins or finds the instance stopped and skips its code.
  std::mutex callback_mutex;
  // Whether the def's stream features are offered for this host (ABI 1.1).
  std::atomic<bool> offer_preauth_features{true};
  std::atomic<bool> offer_session_features{true};

  // Timers in flight, by id; a reload is refused while any is pending.
  std::mutex timers_mutex;
  std::map<uint64_t, parley::ModuleTimer*> timers;
  std::atomic<uint64_t> next_timer_id{1};

  // Storage calls whose completion has not run yet.
  std::atomic<int> storage_in_flight{0};
  // Tracked sends (ABI 1.2) whose completion has not run yet: kept by their
  // sessions, dropped from them once the instance is stopped.
  std::atomic<int> sends_in_flight{0};

  std::mutex counters_mutex;
  std::map<std::string, int64_t> counters;
};

namespace parley {
using ModuleInstance = parley_module;

// A tracked send's completion (ABI 1.2), on the session's loop: runs `done`
// unless the instance has been stopped (guarded like storage completions),
// and ends the send's count in sends_in_flight.
void complete_tracked_send(parley_module& m, parley_sent_fn done, void* arg, bool written);
// A tracked send of a stopped instance dropped without its completion.
inline void forget_tracked_send(parley_module& m) { m.sends_in_flight.fetch_sub(1); }
}
