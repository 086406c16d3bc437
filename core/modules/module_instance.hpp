// A loaded module library and its per-host instances, as the host sees them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/modules/http_route_entry.hpp"
#include "core/modules/module_counters.hpp"
#include "core/modules/module_metrics.hpp"
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

// Lets a module's completions (posted tasks, iq answers) run on any loop
// without a lock while guaranteeing that none starts once stop() has begun:
// run() announces itself, then looks at the gate; close() shuts the gate, then
// waits for the callbacks already inside (both sides sequentially consistent,
// so one of them always sees the other). Callbacks are single module calls,
// so the wait is short.
class CallbackGate {
 public:
  template <class F>
  bool run(F&& f) {
    running_.fetch_add(1);
    bool open = state_.load() == kOpen;
    if (open) f();
    running_.fetch_sub(1);
    return open;
  }
  // start() has not returned yet. A completion of a call start() made can
  // reach a running loop before that (a reload, a load at run time): it comes
  // back a turn later rather than being dropped (storage, posted tasks).
  bool starting() const { return state_.load() == kStarting; }
  void open() { state_.store(kOpen); }
  void close() {
    state_.store(kClosed);
    while (running_.load() != 0) std::this_thread::yield();
  }

 private:
  static constexpr int kStarting = 0, kOpen = 1, kClosed = 2;
  std::atomic<int> state_{kStarting};
  std::atomic<int> running_{0};
};

// A module service (ABI 1.2 register_route) of one instance.
struct ModuleRoute {
  std::string domain;  // prepared
  std::string name;    // for the host's disco#items
  parley_route_fn fn;
};

}  // namespace parley

// The opaque handle modules get: one module started for one host.
struct parley_module {
  parley::ModuleManager* manager = nullptr;
  parley::ServerContext* ctx = nullptr;
  std::shared_ptr<parley::ModuleLibrary> library;
  std::string host;
  // Its scope in the typed stores and the archive ("mod_mam/example.org": each instance
  // has data of its own), made once: every archived message names it.
  std::string store_scope;
  YAML::Node options;  // validated against the def's declared options
  void* state = nullptr;
  std::atomic<bool> started{false};  // read by loops (metrics), written by the main loop
  // Whether the def's stream features are offered for this host (ABI 1.1).
  std::atomic<bool> offer_preauth_features{true};
  std::atomic<bool> offer_session_features{true};
  // hook_mode from start(), one bit per event: left out of the tables, or run
  // only for the sessions that turned it on (PARLEY_EVENT_STANZA_OUT).
  std::atomic<uint64_t> hooks_off{0};  // one bit per event (hook_mode); 64 bits since the events passed 32
  std::atomic<uint64_t> hooks_per_session{0};

  // Timers in flight, by id; a reload is refused while any is pending.
  std::mutex timers_mutex;
  std::map<uint64_t, parley::ModuleTimer*> timers;
  std::atomic<uint64_t> next_timer_id{1};

  // Storage calls whose completion has not run yet.
  std::atomic<int> storage_in_flight{0};
  // Where storage_query runs (ABI 1.7): PARLEY_BACKEND_POSTGRESQL for a module that
  // declared PostgreSQL steps on a PostgreSQL server, else the SQLite file. Set before
  // start(), then read only.
  uint32_t storage_backend = PARLEY_BACKEND_SQLITE;
  // Tracked sends (ABI 1.2) whose completion has not run yet: kept by their
  // sessions, dropped from them once the instance is stopped.
  std::atomic<int> sends_in_flight{0};

  // Every completion that runs the module's code on a loop (storage,
  // accounts, tracked sends; ABI 1.2 posted tasks and sent iqs) runs through
  // the gate, opened after start() and closed before stop(): it either ends
  // before stop() begins or finds the gate shut and skips the code, with no
  // lock between loops. Unload and reload wait until none is in flight.
  parley::CallbackGate gate;
  std::atomic<int> tasks_in_flight{0};
  // Module services registered from start(); read when tables are built.
  std::vector<parley::ModuleRoute> routes;
  // Typed metrics (ABI 1.2), declared in start(), sharded per loop.
  parley::ModuleMetrics metrics;
  // HTTP routes (issue 13, http_route) registered from start(); read when
  // tables are built. Their open exchanges: a stopped instance's are ended
  // on every loop before it is freed (ModuleManager::when_storage_drained).
  std::vector<parley::HttpRouteEntry> http_routes;
  std::atomic<int> http_in_flight{0};
  // HTTP requests (issue 14, http_request) whose completion has not run yet:
  // a stopped instance's are cancelled on every loop before it is freed.
  std::atomic<int> http_requests_in_flight{0};

  // Named counters (ABI 1.0 counter_add), sharded per loop.
  std::unique_ptr<parley::ModuleCounters> counters;
};

namespace parley {
using ModuleInstance = parley_module;

// A def may come from a module built for an older minor: read a field only if
// the module's struct has it (its `size` says how far it goes).
template <class T>
T def_field(const parley_module_def* def, T parley_module_def::*member, T fallback = T{}) {
  static const parley_module_def probe{};
  size_t offset = reinterpret_cast<const char*>(&(probe.*member)) - reinterpret_cast<const char*>(&probe);
  if (def->size < offset + sizeof(T)) return fallback;
  return def->*member;
}

// Whether a module timer repeats (it then never ends by itself), and when a
// one-shot timer fires.
bool timer_repeats(const ModuleTimer& timer);
std::chrono::steady_clock::time_point timer_due(const ModuleTimer& timer);

// A tracked send's completion (ABI 1.2), on the session's loop: runs `done`
// unless the instance has been stopped (guarded like storage completions),
// and ends the send's count in sends_in_flight.
void complete_tracked_send(parley_module& m, parley_sent_fn done, void* arg, bool written);
// A tracked send of a stopped instance dropped without its completion.
inline void forget_tracked_send(parley_module& m) { m.sends_in_flight.fetch_sub(1); }
}
