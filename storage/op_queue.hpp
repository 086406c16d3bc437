// storage/op_queue.hpp - the queue of a threaded store (the archive stores, the keyval
// stores): callers on any thread push operations to a bounded queue under a mutex; the
// store's one thread takes them in batches, in the order they were pushed, and runs each
// batch in one transaction (group commit). Stopping finishes what is queued (or, for a
// store whose database is away, gives it a grace period), then hands the rest back to be
// failed. One copy of this plumbing for every store instead of one per store.
//
// A store whose operations carry a byte buffer (an archive append's) also has the buffers
// go round: see push_built().
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <iterator>
#include <mutex>
#include <string>
#include <utility>
#include <vector>
#include <atomic>

namespace parley::storage {

// What the store's thread takes at once, and what the queue holds: vectors that trade
// places at each take (see take()), not a deque, which allocated a node for each
// operation the size of an archive append's.
template <class Op>
using OpBatch = std::vector<Op>;

// An operation whose buffer the queue may recycle: `std::string take_buffer()` moves it out.
template <class Op>
concept RecyclesBuffer = requires(Op& op) {
  { op.take_buffer() } -> std::same_as<std::string>;
};

template <class Op>
class OpQueue {
 public:
  // A recycled buffer's capacity at most: a larger one (a big stanza's) is freed, so that
  // the spares hold at most max_spares of this (see push_built).
  static constexpr std::size_t kMaxSpareBytes = 4096;

  // max_spares: buffers kept for push_built between batches (0: none).
  explicit OpQueue(std::size_t max_length, std::size_t max_spares = 0)
      : max_(max_length == 0 ? 1 : max_length), max_spares_(max_spares) {}

  // Queues `op` (moved from only then) unless stopping or full. on_queued(op) runs under
  // the lock as it takes its place (an archive append gets its id there: ids increase in
  // queue order). `wake`: also wake a thread waiting in wait_for (a read that must fail
  // at once while the database is away).
  template <class F>
  bool push(Op&& op, F&& on_queued, bool wake = false) {
    std::lock_guard lock(mutex_);
    if (stopping_ || ops_.size() >= max_) return false;
    on_queued(op);
    const bool was_empty = ops_.empty();
    ops_.push_back(std::move(op));
    length_.store(ops_.size(), std::memory_order_relaxed);
    // The thread takes everything queued at once: it needs waking only when it may be
    // waiting, i.e. when the queue was empty (both sides under the mutex: no lost wake).
    if (was_empty || wake) ready_.notify_one();
    return true;
  }
  bool push(Op&& op, bool wake = false) {
    return push(std::move(op), [](Op&) {}, wake);
  }

  // As push, for the operation build(buffer) returns, built in a buffer that an operation
  // which already ran gave back (take() collects them from the batch before), or in an
  // empty one when none is spare. build runs under the lock, and only if the operation is
  // taken. An archive append copies its bytes into memory that goes round between the
  // producers and the store's thread instead of a block malloc'ed on a loop and freed on
  // the store's thread for each append, which sends glibc's malloc to its slow path on
  // both sides (another thread's arena under its lock; a loop's cache never refilled):
  // BENCHMARKS.md, "Session 19".
  template <class Build, class F>
  bool push_built(Build&& build, F&& on_queued, bool wake = false) {
    static_assert(RecyclesBuffer<Op>);
    std::lock_guard lock(mutex_);
    if (stopping_ || ops_.size() >= max_) return false;
    std::string spare;
    if (!spares_.empty()) {
      spare = std::move(spares_.back());
      spares_.pop_back();
    }
    const bool was_empty = ops_.empty();
    ops_.push_back(build(std::move(spare)));
    on_queued(ops_.back());
    length_.store(ops_.size(), std::memory_order_relaxed);
    if (was_empty || wake) ready_.notify_one();
    return true;
  }

  // Waits until something is queued or stop() ran, then takes up to `max` operations
  // into `batch` (emptied first). Empty: stopping, and nothing is left.
  //
  // The queue and the batch trade buffers: when everything waiting fits, the two vectors
  // are swapped, so that the producers push into the buffer of the batch before (already
  // allocated) and the thread runs the batch in theirs. At a steady state neither side
  // allocates per operation, and nothing a producer's thread allocated for the queue is
  // freed by the store's thread (which costs glibc's malloc a trip to the producer's
  // arena, under its lock: BENCHMARKS.md, "Session 18"). A buffer past twice `max`
  // (a backlog) is given back rather than kept.
  //
  // The buffers of the batch before (push_built) become spares, at most max_spares of
  // them: at a steady state each batch gives back about as many as the producers take
  // until the next.
  void take(std::size_t max, OpBatch<Op>& batch) {
    if constexpr (RecyclesBuffer<Op>) collect_buffers(batch);
    batch.clear();
    if (batch.capacity() > 2 * max) OpBatch<Op>().swap(batch);
    std::unique_lock lock(mutex_);
    if constexpr (RecyclesBuffer<Op>) give_spares();
    ready_.wait(lock, [&] { return stopping_ || !ops_.empty(); });
    if (ops_.size() <= max) {
      ops_.swap(batch);
    } else {
      batch.reserve(max);
      std::move(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(max), std::back_inserter(batch));
      ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(max));
    }
    length_.store(ops_.size(), std::memory_order_relaxed);
  }

  // Puts batch[from..] back at the head of the queue, in their order, except those for
  // which drop(op) is true: returned (to be failed outside the lock). keep(op) runs on
  // each op put back (an archive append marks itself a retry).
  template <class Drop, class Keep>
  std::vector<Op> put_back(OpBatch<Op>& batch, std::size_t from, Drop&& drop, Keep&& keep) {
    std::vector<Op> dropped;
    std::vector<Op> kept;
    for (std::size_t i = from; i < batch.size(); ++i) {
      Op& op = batch[i];
      if (drop(op)) {
        dropped.push_back(std::move(op));
        continue;
      }
      keep(op);
      kept.push_back(std::move(op));
    }
    std::lock_guard lock(mutex_);
    ops_.insert(ops_.begin(), std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
    length_.store(ops_.size(), std::memory_order_relaxed);
    return dropped;
  }

  // Takes out the queued operations for which pred(op) is true (in order).
  template <class Pred>
  std::vector<Op> take_if(Pred&& pred) {
    std::vector<Op> out;
    std::lock_guard lock(mutex_);
    for (auto it = ops_.begin(); it != ops_.end();) {
      if (pred(*it)) {
        out.push_back(std::move(*it));
        it = ops_.erase(it);
      } else {
        ++it;
      }
    }
    length_.store(ops_.size(), std::memory_order_relaxed);
    return out;
  }

  // Stopping, and either nothing is left or the grace stop() gave is over.
  bool done_stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_ && (ops_.empty() || std::chrono::steady_clock::now() >= deadline_);
  }

  // Waits up to `d`, or until pred(op) holds for a queued op, or stop's grace is over.
  template <class Pred>
  void wait_for(std::chrono::milliseconds d, Pred&& pred) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, d, [&] {
      for (const Op& op : ops_)
        if (pred(op)) return true;
      return stopping_ && std::chrono::steady_clock::now() >= deadline_;
    });
  }

  // No push is taken from now on; the thread finishes what is queued (for up to `grace`
  // if it cannot: see done_stopping). Idempotent (the first grace stands).
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0)) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) deadline_ = std::chrono::steady_clock::now() + grace;
      stopping_ = true;
    }
    ready_.notify_all();
  }

  // What is left once the thread is gone (to be failed).
  std::vector<Op> drain() {
    std::vector<Op> left;
    std::lock_guard lock(mutex_);
    left.swap(ops_);
    length_.store(0, std::memory_order_relaxed);
    return left;
  }

  // Operations waiting (the health gauge), any thread.
  std::size_t length() const { return length_.load(std::memory_order_relaxed); }

  // Runs fn() under the queue's lock (state that must change in queue order with pushes:
  // the archive's last id at start).
  template <class F>
  void locked(F&& fn) {
    std::lock_guard lock(mutex_);
    fn();
  }

 private:
  // The taking thread's, outside the lock: the batch's buffers worth keeping.
  void collect_buffers(OpBatch<Op>& batch) {
    for (Op& op : batch) {
      if (returned_.size() >= max_spares_) break;
      std::string b = op.take_buffer();
      // Not one without memory of its own (the string's inline capacity).
      if (b.capacity() > std::string().capacity() && b.capacity() <= kMaxSpareBytes) returned_.push_back(std::move(b));
    }
  }
  // Under the lock: the collected buffers join the spares (the larger vector is kept and
  // the smaller moved into it); what is past max_spares_ is freed.
  void give_spares() {
    if (spares_.size() < returned_.size()) spares_.swap(returned_);
    for (std::string& b : returned_) {
      if (spares_.size() >= max_spares_) break;
      spares_.push_back(std::move(b));
    }
    returned_.clear();
  }

  const std::size_t max_;
  const std::size_t max_spares_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Op> ops_;  // in queue order
  std::vector<std::string> spares_;    // guarded by mutex_ (push_built)
  std::vector<std::string> returned_;  // the taking thread's (take)
  std::atomic<std::size_t> length_{0};
  bool stopping_ = false;                                // guarded by mutex_
  std::chrono::steady_clock::time_point deadline_;       // guarded by mutex_
};

}  // namespace parley::storage
