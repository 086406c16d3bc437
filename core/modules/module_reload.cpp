// Hot reload (ARCHITECTURE.md, "The plugin boundary"): pause every module
// entry point -> let the old instance finish what it started -> save its
// state -> start the new code -> restore -> stop the old instance -> resume
// (every loop takes the new tables, then runs what waited) -> unmap the old
// code. Every connection stays up; no event is lost; no event reaches the old
// code once its state is saved.
//
// What "paused" covers is in module_pause.hpp. While the loops are paused the
// old instance's completions (storage calls, account operations, posted
// tasks, sent iqs and their timeouts, timers) still run its code: they were
// started before the pause and finish before save_state. The manager waits
// for them (bounded); a run_fold, the only synchronous way into a module that
// does not go through a paused entry point, skips the frozen instance.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <chrono>

#include "core/modules/module_manager.hpp"
#include "core/modules/slot_carry.hpp"
#include "core/modules/string_sink.hpp"
#include "core/session/session.hpp"
#include "core/server/server_context.hpp"

namespace parley {

namespace {

// How long a paused reload waits for the old instance's completions before
// it gives up (and the old code goes on): module traffic waits meanwhile.
constexpr uint64_t drain_timeout_ms = 5'000;
constexpr uint64_t drain_poll_ms = 2;

// What an instance started and has not finished.
struct InFlight {
  int storage = 0;  // storage calls and account operations
  int tasks = 0;    // posted tasks and sent iqs (send_iq)
  int sends = 0;    // tracked sends (session_send_tracked)
  size_t timers = 0;
  size_t repeating = 0;
  std::chrono::steady_clock::time_point last_due{};  // of the one-shot timers
  bool none() const { return storage == 0 && tasks == 0 && sends == 0 && timers == 0; }
  bool only_sends() const { return storage == 0 && tasks == 0 && timers == 0 && sends != 0; }
  std::string text() const {
    return fmt::format("{} timer(s) ({} repeating), {} storage call(s), {} posted task(s) or sent iq(s)", timers,
                       repeating, storage, tasks);
  }
};

InFlight in_flight(const std::vector<parley_module*>& instances) {
  InFlight out;
  for (parley_module* instance : instances) {
    // The timers before the counts: a firing timer is counted as a task before it leaves
    // the timers (host_api.cpp on_timer), so one of the two reads sees it.
    {
      std::lock_guard lock(instance->timers_mutex);
      out.timers += instance->timers.size();
      for (const auto& [id, timer] : instance->timers) {
        if (timer_repeats(*timer))
          ++out.repeating;
        else
          out.last_due = std::max(out.last_due, timer_due(*timer));
      }
    }
    out.storage += instance->storage_in_flight.load();
    out.tasks += instance->tasks_in_flight.load();
    out.sends += instance->sends_in_flight.load();
  }
  return out;
}

std::string refusal(const std::string& name, const InFlight& pending, const char* when) {
  return fmt::format("module {} has timers, storage calls or tasks in flight {}: {}; try again later", name, when,
                     pending.text());
}

}  // namespace

struct ModuleManager::Reload {
  std::string name;
  std::shared_ptr<ModuleLibrary> fresh;
  Done done;
  std::vector<parley_module*> old;  // the instances replaced, one per host
  uint64_t deadline_ms = 0;         // main loop time
  // Session slots the old code saved (ABI 1.2 save_session_data), per loop.
  std::vector<SavedSlots> slots;
};

void ModuleManager::reload(const std::string& name, Done done) {
  if (busy_) return done(false, "another module change is in progress");
  auto it = modules_.find(name);
  if (it == modules_.end()) return done(false, fmt::format("module {} is not loaded", name));
  auto reload = std::make_shared<Reload>();
  std::vector<const parley_module*> frozen;
  for (auto& instance : it->second.instances) {
    reload->old.push_back(instance.get());
    frozen.push_back(instance.get());
  }
  // A repeating timer never ends by itself, nor does a timer the wait would
  // not see fire: no point pausing anything for them.
  InFlight pending = in_flight(reload->old);
  if (pending.repeating != 0)
    return done(false, refusal(name, pending, "(a repeating timer ends only when cancelled)"));
  if (pending.last_due > std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_timeout_ms))
    return done(false, refusal(name, pending, fmt::format("(a timer is due in more than {} s)",
                                                          drain_timeout_ms / 1000).c_str()));
  auto lib = open_library(name);
  if (!lib) return done(false, lib.error());
  if (auto valid = validate_options(**lib, it->second.options); !valid) return done(false, valid.error());
  busy_ = true;
  reload->name = name;
  reload->fresh = *lib;
  reload->done = std::move(done);
  reload->deadline_ms = uv_now(main_.uv()) + drain_timeout_ms;
  // From each loop's acknowledgement on, nothing new enters module code there.
  pause_loops(std::move(frozen), [this, reload] { drain_then_swap(reload); });
}

void ModuleManager::drain_then_swap(std::shared_ptr<Reload> reload) {
  InFlight pending = in_flight(reload->old);
  if (pending.none()) return swap(reload);
  if (pending.only_sends()) {
    // Tracked sends wait on a client's reading, which may never come: the old
    // instance's are dropped without their completion (the ABI says so). Its
    // code cannot start new ones: nothing enters it any more.
    return drop_tracked_sends(reload->old, [this, reload] { drain_then_swap(reload); });
  }
  if (uv_now(main_.uv()) >= reload->deadline_ms) {
    // Nothing was swapped: the old code goes on, with what waited, in order.
    std::string error = refusal(reload->name, pending, fmt::format("after {} s", drain_timeout_ms / 1000).c_str());
    install_tables(build_tables(), true, [this, reload, error] {
      busy_ = false;
      reload->done(false, error);
    });
    return;
  }
  after(drain_poll_ms, [this, reload] { drain_then_swap(reload); });
}

void ModuleManager::swap(std::shared_ptr<Reload> reload) {
  // Session slots first (ABI 1.2), if both codes carry them: each loop has
  // the old code write its slots to bytes and free them, before save_state.
  auto save_slot = def_field(modules_.at(reload->name).library->def, &parley_module_def::save_session_data);
  auto restore_slot = def_field(reload->fresh->def, &parley_module_def::restore_session_data);
  if (save_slot == nullptr || restore_slot == nullptr) return swap_code(reload);
  reload->slots.resize(ctx_.loops.size());
  on_all_loops(
      [reload, save_slot](LoopContext& lc) {
        reload->slots[lc.loop.index()] = save_session_slots(lc, reload->old, save_slot, reload->name);
      },
      [this, reload] { swap_code(reload); });
}

void ModuleManager::swap_code(std::shared_ptr<Reload> reload) {
  // Every loop is paused, the old instance has nothing in flight and nothing
  // can enter it: its state is final.
  const std::string& name = reload->name;
  Loaded& old = modules_.at(name);
  std::vector<std::string> saved;
  auto save = def_field(old.library->def, &parley_module_def::save_state);
  auto restore = def_field(reload->fresh->def, &parley_module_def::restore_state);
  for (auto& instance : old.instances) {
    std::string bytes;
    if (save && restore) {
      parley_sink sink = string_sink(bytes);
      int rc;
      try {
        rc = save(instance->state, sink);
      } catch (...) {
        rc = -1;
      }
      if (rc != 0) spdlog::warn("module {}: save_state failed for {}", name, instance->host);
    }
    saved.push_back(std::move(bytes));
  }
  // The new code serves the subdomains the old one did (register_route in
  // its start()): the old instances' routes do not count against it.
  replacing_ = &old;
  auto instances = start_instances(reload->fresh, old.options);
  replacing_ = nullptr;
  if (instances && save && restore) {
    for (size_t i = 0; i < instances->size(); ++i) {
      parley_str bytes{saved[i].data(), saved[i].size()};
      int rc;
      try {
        rc = restore((*instances)[i]->state, bytes);
      } catch (...) {
        rc = -1;
      }
      if (rc != 0) {
        stop_instances(*instances);
        instances = unexpected(fmt::format("module {}: the new code refused the saved state", name));
        break;
      }
    }
  }
  if (!instances) {
    // The old code goes on (its save_state had no effect), with what waited.
    install_tables(build_tables(), true, [this, reload, error = instances.error()] {
      busy_ = false;
      reload->done(false, error);
    });
    return;
  }
  auto retired = std::make_shared<Loaded>(std::move(old));
  old = Loaded{reload->fresh, retired->options, std::move(*instances)};
  std::vector<parley_module*> fresh_instances;
  for (auto& instance : old.instances) fresh_instances.push_back(instance.get());
  auto restore_slot = def_field(reload->fresh->def, &parley_module_def::restore_session_data);
  // The saved slots go to the new code on each loop (paused: before it sees
  // any event there); then the old instance's teardown, before any loop
  // resumes: what per-session data it still has (free_fn, on each loop: it
  // may use the instance's state, so before stop), then stop(). It never
  // sees an event again (nor the completion of a call stop() makes).
  on_all_loops(
      [reload, fresh_instances, restore_slot](LoopContext& lc) {
        if (reload->slots.empty()) return;
        restore_session_slots(lc, std::move(reload->slots[lc.loop.index()]), fresh_instances, restore_slot,
                              reload->name);
      },
      [this, reload, retired] { retire(reload, retired); });
}

void ModuleManager::retire(std::shared_ptr<Reload> reload, std::shared_ptr<Loaded> retired) {
  drop_session_data(reload->old, [this, reload, retired] {
    stop_instances(retired->instances);
    install_tables(build_tables(), true, [this, reload, retired] {
      // No loop holds the old tables any more: unmap the old code once
      // stop()'s calls are done.
      when_storage_drained(retired, [this, reload, retired] {
        retired->instances.clear();
        retired->library.reset();  // dlclose the old copy
        busy_ = false;
        spdlog::info("module {} reloaded", reload->name);
        reload->done(true, fmt::format("module {} reloaded\n", reload->name));
      });
    });
  });
}

void ModuleManager::drop_tracked_sends(const std::vector<parley_module*>& instances, std::function<void()> done) {
  on_all_loops(
      [instances](LoopContext& lc) {
        for (auto& [id, session] : lc.sessions)
          for (parley_module* instance : instances) session->drop_tracked(instance);
      },
      std::move(done));
}

void ModuleManager::after(uint64_t ms, std::function<void()> fn) {
  struct Wait {
    uv_timer_t timer;
    std::function<void()> fn;
  };
  auto* wait = new Wait{{}, std::move(fn)};
  uv_timer_init(main_.uv(), &wait->timer);
  wait->timer.data = wait;
  uv_timer_start(
      &wait->timer,
      [](uv_timer_t* timer) {
        auto* w = static_cast<Wait*>(timer->data);
        std::function<void()> next = std::move(w->fn);
        uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) { delete static_cast<Wait*>(h->data); });
        next();
      },
      ms, 0);
}

}  // namespace parley
