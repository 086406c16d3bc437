// parley/sdk/host_pending.hpp - Host's bookkeeping of the callbacks the host
// has not run yet: attaching to the host table, keeping and taking a pending
// callback in the calling loop's table (or the locked fallback), counting them,
// and forgetting them all when the instance stops (parley/sdk/pending.hpp has the
// tables). Part of parley/module.hpp through host.hpp; not meant to be included
// on its own.
#pragma once

#include "parley/sdk/host.hpp"

namespace parley {

namespace detail {

// The exception text for the log, without letting a second exception escape.
inline void log_exception(const Host& host, std::string_view where, std::exception_ptr ep) noexcept {
  try {
    std::string what = "non-standard exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    host.error(std::string(where) + " threw: " + what);
  } catch (...) {
    host.error(where);
  }
}

}  // namespace detail

inline void Host::attach(parley_module* m, const parley_host_api* api) noexcept {
  m_ = m;
  api_ = api;
  if (loops_ || !detail::loop_keys_fit || !api || !supports(PARLEY_HOST_ENTRY_END(current_loop)) ||
      !api->loop_count || !api->current_loop)
    return;
  uint32_t count = api->loop_count(m);
  if (count == 0) return;
  if (count > detail::max_loops) count = detail::max_loops;  // the loops past it use the fallback
  try {
    loops_.reset(new detail::LoopTable[count]);
  } catch (...) {
    return;  // everything in the fallback
  }
  ticket_ = detail::Shared::get().take_ticket(this);
  loop_count_ = ticket_ != 0 ? count : 0;
}

inline detail::LoopTable* Host::loop_here(uint32_t* loop) const noexcept {
  if (loop_count_ == 0) return nullptr;
  int32_t here = api_->current_loop(m_);
  if (here < 0 || static_cast<uint32_t>(here) >= loop_count_) return nullptr;
  *loop = static_cast<uint32_t>(here);
  return &loops_[*loop];
}

inline uint64_t Host::keep(std::unique_ptr<detail::Pending> p) const {
  p->owner = this;
  uint32_t loop = 0;
  if (detail::LoopTable* t = loop_here(&loop)) {
    t->drain_cancels();
    uint32_t slot = 0;
    uint16_t gen = 0;
    if (t->add(p, &slot, &gen)) return detail::encode(detail::LoopKey{ticket_, loop, slot, gen});
  }
  return detail::Shared::get().add(std::move(p), fallback_counts_);
}

inline void Host::unkeep(uint64_t key, detail::PendingKind kind) const noexcept {
  try {
    if (!detail::is_loop_key(key)) {
      std::unique_ptr<detail::Pending> gone = detail::Shared::get().take(key, kind);
      return;
    }
    detail::LoopKey k = detail::decode(key);
    std::unique_ptr<detail::Pending> gone = loops_[k.loop].remove(k.slot, true);
  } catch (...) {
  }
}

inline detail::LoopTable* Host::table_of(const detail::LoopKey& key) noexcept {
  const Host* host = detail::host_of_ticket(key.ticket);
  // Gone (its ticket was given back, or is another Host's now): ignored.
  if (!host || host->ticket_ != key.ticket || key.loop >= host->loop_count_) return nullptr;
  int32_t here = host->api_->current_loop(host->m_);
  if (here < 0 || static_cast<uint32_t>(here) != key.loop) {
    // module.h: timers, storage and tracked sends complete on the loop that
    // asked. Touching that loop's table from here would be a data race.
    host->error("a completion for loop " + std::to_string(key.loop) + " ran on loop " + std::to_string(here) +
                ": dropped");
    return nullptr;
  }
  return &host->loops_[key.loop];
}

inline std::unique_ptr<detail::Pending> Host::take(void* arg, detail::PendingKind kind) noexcept {
  try {
    uint64_t key = detail::arg_key(arg);
    if (!detail::is_loop_key(key)) return detail::Shared::get().take(key, kind);
    detail::LoopKey k = detail::decode(key);
    detail::LoopTable* t = table_of(k);
    if (!t) return nullptr;
    t->drain_cancels();
    if (!t->find(k.slot, k.gen, kind)) return nullptr;
    return t->remove(k.slot, true);
  } catch (...) {
    return nullptr;
  }
}

inline std::size_t Host::count_pending(detail::PendingKind kind) const noexcept {
  std::size_t n = fallback_counts_[static_cast<std::size_t>(kind)].load(std::memory_order_relaxed);
  for (uint32_t l = 0; l < loop_count_; ++l) n += loops_[l].counted(kind);
  return n;
}

inline void Host::forget_all() noexcept {
  // Safe to walk every loop's table from this thread: no loop runs this
  // instance's code now. The core calls stop() (and so this, through the
  // destructor) only after the instance's gate closed and its completions
  // were fenced off (module.h: storage, tracked sends, posts, iqs and attach
  // completions never run once the module is stopped; a timer only while it
  // is started, and unload/reload wait until none is pending; at shutdown
  // the loops were joined first). Their last writes happen-before this
  // through the core's gate, its callback lock or the joins.
  std::vector<uint64_t> timers;
  std::vector<std::unique_ptr<detail::Pending>> doomed;  // freed once the tables are consistent
  try {
    for (uint32_t l = 0; l < loop_count_; ++l) {
      detail::LoopTable& t = loops_[l];
      t.drain_cancels();  // cancelled at the host already
      for (uint32_t s = 0; s < t.slots.size(); ++s) {
        detail::Pending* p = t.slots[s].p.get();
        if (!p) continue;
        if (p->kind == detail::PendingKind::timer && p->timer_id && !p->cancelled) timers.push_back(p->timer_id);
        if (p->firing) {
          // Running right now (forget_all from inside its callback): on_timer
          // deletes it on return and touches nothing else.
          std::unique_ptr<detail::Pending> mine = t.remove(s, !p->cancelled);
          p->cancelled = p->orphaned = true;
          p->owner = nullptr;
          mine.release();
        } else {
          doomed.push_back(t.remove(s, true));
        }
      }
    }
    detail::Shared::get().forget(this, timers, doomed);
  } catch (...) {
  }
  for (auto& c : fallback_counts_) c.store(0, std::memory_order_relaxed);
  doomed.clear();
  if (api_)
    for (uint64_t id : timers) api_->timer_cancel(m_, id);
}

}  // namespace parley
