// What a worker loop holds back while modules are swapped (hot reload).
//
// A reload pauses every module entry point: from the moment a loop begins the
// pause, each event that would enter module code on it (a client's stanza, a
// session opened, bound or closed, a pre-authentication iq, a stanza being
// routed, an account announcement) waits here, in arrival order, and runs
// once the new code is in place (end()), against the tables installed just
// before. Completions of work a module had started (storage results, posted
// tasks, send_iq answers, timers) are not entry points: they keep running
// while the loop is paused, so the module being swapped can finish them
// before its state is saved (the manager waits for that; module_reload.cpp).
//
// Owned and touched by its loop only: the stanza path reads one bool.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

struct parley_module;

namespace parley {

class ModulePause {
 public:
  using Task = std::function<void()>;

  bool active() const { return active_; }

  // Starts holding events back. `frozen`: the instances being swapped, which
  // nothing may call synchronously any more (run_fold skips them).
  void begin(std::vector<const parley_module*> frozen);
  // While active: `task` runs at end(), after the tasks deferred before it.
  void defer(Task task);
  // Stops holding back and runs what waited, in order. A task that would be
  // deferred again runs at once (the pause is over). No-op when not active.
  void end();

  bool frozen(const parley_module* instance) const;
  size_t waiting() const { return waiting_.size(); }

 private:
  bool active_ = false;
  std::deque<Task> waiting_;
  std::vector<const parley_module*> frozen_;
};

// Runs `task` now, or at the end of the pause of `pause` if one is on.
inline void run_or_defer(ModulePause& pause, ModulePause::Task task) {
  if (pause.active())
    pause.defer(std::move(task));
  else
    task();
}

}  // namespace parley
