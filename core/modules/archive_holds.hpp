// The clients one loop holds because the archive is behind (ABI 1.11
// archive_append_paced): each waits until the append of its stanza has completed.
//
// Appends complete in the order of their ids (storage/archive_store.hpp,
// completed_through), and one loop's appends are made in id order, so the holds
// are kept in that order and a release takes them from the front up to the
// store's mark. The store's thread wakes the loop with `task`, at most one post
// in flight per loop whatever the number of appends it completed (before session
// 18 it posted a closure per append, allocated on its thread and freed on the
// loop's). Owned by the loop: only `posted` and `task`'s link are touched from
// the store's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "core/loop/worker_loop.hpp"
#include "core/session/session_table.hpp"

namespace parley {

namespace storage {
class ArchiveStore;
}

struct LoopContext;

struct ArchiveHolds {
  // The store the appends went to (set with the first hold).
  const storage::ArchiveStore* store = nullptr;
  // (the id of the append it waits for, the session), in id order.
  std::deque<std::pair<uint64_t, SessionId>> waiting;
  // Holds to release at the next run whatever the mark (their append was refused).
  std::vector<SessionId> release_now;

  struct Task : LoopTask {
    LoopContext* loop = nullptr;
  };
  Task task;
  // True from a post of `task` until it starts running (then false again first, so
  // that a completion after that posts anew).
  std::atomic<bool> posted{false};
};

}  // namespace parley
