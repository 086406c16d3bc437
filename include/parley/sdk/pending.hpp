// parley/sdk/pending.hpp - where the SDK keeps the callbacks the host has not
// run yet (timers, storage completions, tracked sends, attaches): per Host and
// per worker loop, touched only by that loop's thread, with no lock; and a
// small locked fallback for what does not fit that rule.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
//
// The rule (docs/plugins.md, ARCHITECTURE.md "Threads and sharding"): state is
// owned by one loop and no lock is taken on the stanza path. A callback the
// module registers on worker loop L (current_loop() == L) completes on L:
// module.h says so for timers ("the callback runs on that loop"), storage
// ("done() runs later on the calling loop") and tracked sends ("call on the
// session's loop", completed there). So it is kept in the Host's table of loop
// L, which only L's thread reads or writes while the module runs, and the
// `arg` handed through the C ABI is a key naming that table and a slot in it:
//
//   bit 63     1 (0: a key of the fallback registry)
//   bits 44-62 the Host's ticket: an index into the .so's table of live Hosts
//              (11 bits) and that index's generation (8 bits)
//   bits 36-43 the loop (0-255)
//   bits 16-35 the slot in that loop's table (20 bits)
//   bits 0-15  the slot's generation
//
// A completion decodes it, finds the Host through the ticket (an atomic
// pointer, written only when a Host is made or destroyed), checks that it runs
// on that loop, and finds the slot: a Host that is gone (its ticket slot is
// empty or reused), a slot already completed (its generation moved on) or a
// callback of another kind finds nothing and does nothing, as before.
//
// What cannot be loop-owned goes to the fallback, one locked map per .so, as
// every callback did before: registrations made off the
// worker loops (start(), stop(), a thread of the module's own; they complete on
// a loop), session_attach (its completion may run on another loop than the
// one that asked), hosts older than ABI 1.2 (no current_loop), a Host without
// a ticket (more than 2048 alive in one .so) and a loop table past 2^20 slots.
// All of them are rare; none is per stanza.
//
// The fallback's lock is the only one in the SDK, and all of it is inside the
// sections marked below: tests/unit/sdk/loops_test.cpp fails if a lock appears
// anywhere else in include/parley/sdk, and counts the times it is taken
// (Shared::locks_taken) to show that the loop path never takes it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"
#include "parley/sdk/storage.hpp"

// ---- the fallback: the only lock in the SDK (nothing outside this section may lock) ----
#include <mutex>
// ---- end of the fallback section ----

namespace parley {

class Host;

namespace detail {

enum class PendingKind : uint8_t { timer = 0, rows = 1, sent = 2, attach = 3, archive = 4, store = 5 };
inline constexpr std::size_t pending_kinds = 6;

// One callback the host has not run yet.
struct Pending {
  explicit Pending(PendingKind k) noexcept : kind(k) {}
  PendingKind kind;
  const Host* owner = nullptr;  // null once forget_all orphaned it while it fired
  // A fallback entry: its owner's fallback counts (changed under the lock).
  std::atomic<std::size_t>* owner_counts = nullptr;
  uint64_t timer_id = 0;        // the host's id, once timer_start returned it
  bool repeating = false;
  bool firing = false;     // its timer callback is running
  bool cancelled = false;  // cancelled while firing: on_timer frees it on return
  bool orphaned = false;   // forget_all ran while it fired: on_timer deletes it, touching nothing else
  std::function<void(uint64_t)> on_timer;
  std::function<void(Result<Rows, std::string>)> on_rows;
  std::function<void(bool)> on_sent;  // a tracked send (1.2)
  // session_attach (1.2): may run on another loop than the one that asked.
  std::function<void(parley_session_id, bool)> on_attach;
  // An archive store operation (issue 11): the page, or an error condition.
  std::function<void(const parley_archive_page*, std::string_view)> on_archive;
  // A typed store operation (issue 11: keyval): its C result struct, or an error condition.
  std::function<void(const void*, std::string_view)> on_store;
};

// ---- keys ----

inline constexpr bool loop_keys_fit = sizeof(void*) >= sizeof(uint64_t);  // else: everything in the fallback
inline constexpr uint64_t loop_key_bit = uint64_t{1} << 63;
inline constexpr uint32_t max_loops = 256;
inline constexpr uint32_t max_slots = uint32_t{1} << 20;
inline constexpr uint32_t ticket_index_bits = 11;
inline constexpr uint32_t max_tickets = uint32_t{1} << ticket_index_bits;
inline constexpr uint32_t ticket_bits = ticket_index_bits + 8;

struct LoopKey {
  uint32_t ticket;  // != 0
  uint32_t loop;
  uint32_t slot;
  uint16_t gen;
};

inline uint64_t encode(const LoopKey& k) noexcept {
  return loop_key_bit | (uint64_t{k.ticket} << 44) | (uint64_t{k.loop} << 36) | (uint64_t{k.slot} << 16) | k.gen;
}
inline bool is_loop_key(uint64_t key) noexcept { return (key & loop_key_bit) != 0; }
inline LoopKey decode(uint64_t key) noexcept {
  return LoopKey{static_cast<uint32_t>((key >> 44) & ((uint64_t{1} << ticket_bits) - 1)),
                 static_cast<uint32_t>((key >> 36) & 0xff), static_cast<uint32_t>((key >> 16) & (max_slots - 1)),
                 static_cast<uint16_t>(key & 0xffff)};
}
inline uint32_t ticket_index(uint32_t ticket) noexcept { return ticket & (max_tickets - 1); }

inline void* key_arg(uint64_t key) noexcept { return reinterpret_cast<void*>(static_cast<uintptr_t>(key)); }
inline uint64_t arg_key(void* arg) noexcept { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(arg)); }

// ---- one loop's callbacks of one Host: no lock ----

// A timer of this loop cancelled from another thread (cancel_timer off the
// timer's loop): pushed here lock-free, taken by the loop the next time it
// enters the SDK for this Host (drain_cancels).
struct CancelNode {
  uint64_t timer_id;
  CancelNode* next;
};

// Read and written by the loop's own thread only, except: `cancels` (any
// thread pushes, atomically), `counts` (written by the loop, read by anyone:
// relaxed atomics, never a read-modify-write by two threads), and forget_all /
// the destructor, which run when no loop can run this Host's code any more
// (see Host::forget_all). alignas: two loops' tables never share a cache line.
struct alignas(64) LoopTable {
  struct Slot {
    std::unique_ptr<Pending> p;
    uint16_t gen = 0;
  };
  std::vector<Slot> slots;
  std::vector<uint32_t> free;                      // empty slots
  std::unordered_map<uint64_t, uint32_t> timers;   // the host's timer id -> slot (not cancelled)
  std::atomic<CancelNode*> cancels{nullptr};
  std::atomic<std::size_t> counts[pending_kinds] = {};  // pending, by kind; a cancelled timer is not

  LoopTable() = default;
  LoopTable(const LoopTable&) = delete;
  LoopTable& operator=(const LoopTable&) = delete;
  ~LoopTable() {
    CancelNode* n = cancels.exchange(nullptr, std::memory_order_acquire);
    while (n) delete std::exchange(n, n->next);
  }

  // Only this loop writes a count: a load and a store, no atomic RMW.
  void count(PendingKind kind, int delta) noexcept {
    auto& c = counts[static_cast<std::size_t>(kind)];
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::size_t>(delta), std::memory_order_relaxed);
  }
  std::size_t counted(PendingKind kind) const noexcept {
    return counts[static_cast<std::size_t>(kind)].load(std::memory_order_relaxed);
  }

  // Keeps `p`; false if the table is full (the caller uses the fallback).
  bool add(std::unique_ptr<Pending>& p, uint32_t* slot, uint16_t* gen) {
    uint32_t s;
    if (!free.empty()) {
      s = free.back();
      free.pop_back();
    } else {
      if (slots.size() >= max_slots) return false;
      // So that remove() never allocates (free.size() <= slots.size()).
      if (free.capacity() < slots.size() + 1) free.reserve(2 * (slots.size() + 1));
      slots.emplace_back();
      s = static_cast<uint32_t>(slots.size() - 1);
    }
    count(p->kind, +1);
    slots[s].p = std::move(p);
    *slot = s;
    *gen = slots[s].gen;
    return true;
  }
  Pending* find(uint32_t slot, uint16_t gen, PendingKind kind) const noexcept {
    if (slot >= slots.size() || slots[slot].gen != gen) return nullptr;
    Pending* p = slots[slot].p.get();
    return p && p->kind == kind ? p : nullptr;
  }
  // Takes the slot's callback out and frees the slot (a later key for it finds
  // nothing). `counted`: it is still in the counts (not a cancelled timer).
  std::unique_ptr<Pending> remove(uint32_t slot, bool counted) {
    Slot& s = slots[slot];
    if (!s.p) return nullptr;  // empty already (it is in `free`)
    std::unique_ptr<Pending> p = std::move(s.p);
    ++s.gen;
    free.push_back(slot);  // capacity reserved by add(): cannot throw
    if (counted) count(p->kind, -1);
    if (p->kind == PendingKind::timer && p->timer_id != 0) {
      auto it = timers.find(p->timer_id);
      if (it != timers.end() && it->second == slot) timers.erase(it);
    }
    return p;
  }
  // A timer of this table cancelled at the host: it never runs again. Freed
  // now, or by on_timer when it returns if it is firing. Returns what to free
  // (null if it fires): the caller lets it go once the table is consistent.
  std::unique_ptr<Pending> cancel(uint32_t slot) {
    Pending* p = slots[slot].p.get();
    if (!p || p->cancelled) return nullptr;
    if (p->firing) {
      p->cancelled = true;
      count(PendingKind::timer, -1);
      timers.erase(p->timer_id);
      return nullptr;
    }
    return remove(slot, true);
  }

  // Any thread: the host was asked to cancel timer `id`, which may be here.
  void push_cancel(uint64_t id) {
    auto* n = new CancelNode{id, cancels.load(std::memory_order_relaxed)};
    while (!cancels.compare_exchange_weak(n->next, n, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }
  // The loop's thread (or forget_all): applies the cancels other threads
  // pushed. One relaxed load when there are none.
  void drain_cancels() {
    if (cancels.load(std::memory_order_relaxed) == nullptr) return;
    CancelNode* n = cancels.exchange(nullptr, std::memory_order_acquire);
    std::vector<std::unique_ptr<Pending>> gone;
    while (n) {
      std::unique_ptr<CancelNode> node(std::exchange(n, n->next));
      auto it = timers.find(node->timer_id);
      if (it == timers.end()) continue;  // not this loop's, or fired already
      if (auto p = cancel(it->second)) gone.push_back(std::move(p));
    }
  }  // `gone` freed here, the table consistent
};

// ---- the fallback: the only lock in the SDK (nothing outside this section may lock) ----

// One per .so (hidden visibility), shared by the instances of the module in
// it: the fallback registry, and the tickets of the live Hosts.
struct Shared {
  // Recursive: a host that ran a callback from inside timer_start would
  // otherwise deadlock; it then finds no id yet and the callback is dropped.
  std::recursive_mutex mu;
  uint64_t locks = 0;  // times mu was taken (under mu): what the tests watch
  std::map<uint64_t, std::unique_ptr<Pending>> pending;
  uint64_t next_key = 1;

  // By ticket index: the live Host holding it (null: free). Written under
  // mu when a Host is made or destroyed; read by completions, lock-free.
  std::atomic<const Host*> hosts[max_tickets] = {};
  uint8_t generation[max_tickets] = {};  // under mu
  uint16_t next_free[max_tickets] = {};  // under mu: the free list (first_free: none if max_tickets)
  uint32_t first_free = max_tickets;
  uint32_t never_used = 0;

  static Shared& get() noexcept {
    static Shared shared;
    return shared;
  }
  std::unique_lock<std::recursive_mutex> lock() {
    std::unique_lock<std::recursive_mutex> l(mu);
    ++locks;
    return l;
  }
  // Tests: how often the fallback lock was taken so far.
  uint64_t locks_taken() {
    std::lock_guard<std::recursive_mutex> l(mu);
    return locks;
  }

  // A ticket for `host` (0: none left; the Host then uses the fallback only).
  uint32_t take_ticket(const Host* host) noexcept {
    try {
      auto l = lock();
      uint32_t index;
      if (first_free != max_tickets) {
        index = first_free;
        first_free = next_free[index];
      } else if (never_used < max_tickets) {
        index = never_used++;
      } else {
        return 0;
      }
      if (++generation[index] == 0) generation[index] = 1;
      hosts[index].store(host, std::memory_order_release);
      return (uint32_t{generation[index]} << ticket_index_bits) | index;
    } catch (...) {
      return 0;
    }
  }
  void give_back(uint32_t ticket) noexcept {
    if (ticket == 0) return;
    try {
      auto l = lock();
      uint32_t index = ticket_index(ticket);
      hosts[index].store(nullptr, std::memory_order_release);
      next_free[index] = static_cast<uint16_t>(first_free);
      first_free = index;
    } catch (...) {
    }
  }

  // ---- fallback entries: registered, run and dropped under the lock ----

  static void uncount(const Pending& p) noexcept {
    if (p.owner_counts && !p.cancelled) p.owner_counts[static_cast<std::size_t>(p.kind)].fetch_sub(1);
  }

  // Keeps `p` (owner set); counts: its owner's fallback counts.
  uint64_t add(std::unique_ptr<Pending> p, std::atomic<std::size_t>* counts) {
    auto l = lock();
    return add_locked(std::move(p), counts);
  }
  uint64_t add_locked(std::unique_ptr<Pending> p, std::atomic<std::size_t>* counts) {
    uint64_t key = next_key++ & ~loop_key_bit;
    p->owner_counts = counts;
    PendingKind kind = p->kind;
    pending.emplace(key, std::move(p));
    counts[static_cast<std::size_t>(kind)].fetch_add(1);
    return key;
  }

  // A one-shot completion (or a refused registration) takes its callback out.
  std::unique_ptr<Pending> take(uint64_t key, PendingKind kind) {
    auto l = lock();
    auto it = pending.find(key);
    if (it == pending.end() || it->second->kind != kind) return nullptr;
    std::unique_ptr<Pending> p = std::move(it->second);
    pending.erase(it);
    uncount(*p);
    return p;
  }

  // A timer: kept, then started at the host with its key (held across the
  // start, so that a callback on another loop cannot look for the timer
  // before its id is recorded). 0 if the host refused it (then forgotten).
  template <class Start>
  uint64_t start_timer(std::unique_ptr<Pending> p, std::atomic<std::size_t>* counts, Start&& start) {
    auto l = lock();
    Pending* raw = p.get();
    uint64_t key = add_locked(std::move(p), counts);
    uint64_t id = start(key);
    if (id == 0) {
      std::unique_ptr<Pending> gone = std::move(pending[key]);
      pending.erase(key);
      uncount(*gone);
      return 0;
    }
    raw->timer_id = id;
    return id;
  }

  // A fallback timer fires: `run(p)` outside the lock, unless it is gone,
  // cancelled or not this timer.
  template <class Run>
  void fire(uint64_t key, uint64_t timer_id, Run&& run) {
    Pending* p = nullptr;
    {
      auto l = lock();
      auto it = pending.find(key);
      if (it == pending.end() || it->second->kind != PendingKind::timer || it->second->cancelled ||
          it->second->timer_id != timer_id)
        return;
      p = it->second.get();
      p->firing = true;
    }
    run(*p);
    std::unique_ptr<Pending> gone;
    auto l = lock();
    p->firing = false;
    if (p->repeating && !p->cancelled) return;
    auto it = pending.find(key);
    if (it == pending.end()) return;
    gone = std::move(it->second);
    pending.erase(it);
    uncount(*gone);  // nothing if cancelled (counted off then) or orphaned
  }

  // cancel_timer for a timer of `owner` in the fallback: -1 not here; else
  // what the host said (cancel_at_host() == 1: cancelled, it never starts again).
  template <class CancelAtHost>
  int cancel_timer(const Host* owner, uint64_t id, CancelAtHost&& cancel_at_host) {
    auto find = [&]() {
      for (auto it = pending.begin(); it != pending.end(); ++it)
        if (it->second->owner == owner && it->second->kind == PendingKind::timer && it->second->timer_id == id)
          return it;
      return pending.end();
    };
    {
      auto l = lock();
      if (find() == pending.end()) return -1;
    }
    if (cancel_at_host() != 1) return 0;
    std::unique_ptr<Pending> gone;
    auto l = lock();
    auto it = find();
    if (it == pending.end() || it->second->cancelled) return 1;
    // Cancelled from inside its own callback: fire() frees it on return.
    if (it->second->firing) {
      uncount(*it->second);
      it->second->cancelled = true;
    } else {
      gone = std::move(it->second);
      pending.erase(it);
      uncount(*gone);
    }
    return 1;
  }

  // forget_all: drops `owner`'s callbacks (into `doomed`, freed by the caller
  // after the lock), adds its live timers' ids to `timers`. One that fires
  // right now stays until fire() returns, orphaned.
  void forget(const Host* owner, std::vector<uint64_t>& timers, std::vector<std::unique_ptr<Pending>>& doomed) {
    auto l = lock();
    for (auto it = pending.begin(); it != pending.end();) {
      Pending& p = *it->second;
      if (p.owner != owner) {
        ++it;
        continue;
      }
      if (p.kind == PendingKind::timer && p.timer_id && !p.cancelled) timers.push_back(p.timer_id);
      if (p.firing) {
        p.cancelled = p.orphaned = true;
        p.owner = nullptr;
        p.owner_counts = nullptr;
        ++it;
      } else {
        doomed.push_back(std::move(it->second));
        it = pending.erase(it);
      }
    }
  }
};

// ---- end of the fallback section ----

// The live Host a ticket names, lock-free (null if it is gone). The ticket's
// generation tells a Host from a later one at the same index.
inline const Host* host_of_ticket(uint32_t ticket) noexcept {
  if (ticket == 0) return nullptr;
  return Shared::get().hosts[ticket_index(ticket)].load(std::memory_order_acquire);
}

}  // namespace detail

}  // namespace parley
