#include "core/modules/module_pause.hpp"

#include <algorithm>

namespace parley {

void ModulePause::begin(std::vector<const parley_module*> frozen) {
  active_ = true;
  frozen_ = std::move(frozen);
}

void ModulePause::defer(Task task) { waiting_.push_back(std::move(task)); }

void ModulePause::end() {
  if (!active_) return;
  active_ = false;
  frozen_.clear();
  // Taken out first: a task may do anything the loop does, this included.
  std::deque<Task> waiting = std::move(waiting_);
  waiting_.clear();
  for (Task& task : waiting) task();
}

bool ModulePause::frozen(const parley_module* instance) const {
  return active_ && std::find(frozen_.begin(), frozen_.end(), instance) != frozen_.end();
}

}  // namespace parley
