// One libuv loop on its own thread. A connection lives on one loop for its whole
// life; other threads reach it only through post().
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "core/loop/mpsc_queue.hpp"

namespace parley {

// A unit of work posted to a loop, linked into its inbox without allocating:
// the poster owns the node (often inside the object the task is about) and
// `fn` gives it back. `run` is false when the loop is destroyed with the task
// still queued: then `fn` only releases what the node holds.
struct LoopTask : MpscNode {
  void (*fn)(LoopTask* task, bool run) = nullptr;
};

class WorkerLoop {
 public:
  using Task = std::function<void()>;

  explicit WorkerLoop(unsigned index);
  ~WorkerLoop();
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  unsigned index() const { return index_; }
  uv_loop_t* uv() { return &loop_; }

  // Runs on the loop's thread before anything else (thread-local set-up).
  void set_thread_init(Task init) { thread_init_ = std::move(init); }
  // Runs the loop on a new thread (worker loops) ...
  void start_thread();
  // ... or on the calling thread until stop() (the main loop).
  void run_here();

  // Any thread: run task on this loop's thread, in posting order per producer.
  // The loop is woken only when its inbox goes from empty to non-empty; a busy
  // loop picks up later posts in the same drain, without a wake-up each.
  // One allocation per post (the callable and its link in one node).
  template <class F>
  void post(F&& task) {
    using Fn = std::decay_t<F>;
    struct Node : LoopTask {
      explicit Node(F&& f) : callable(std::forward<F>(f)) {}
      Fn callable;
    };
    Node* node = new Node(std::forward<F>(task));
    node->fn = [](LoopTask* t, bool run) {
      std::unique_ptr<Node> owned(static_cast<Node*>(t));  // freed even if the task throws
      if (run) owned->callable();
    };
    post_task(node);
  }
  // The same with the caller's node: no allocation. The node must stay valid
  // until its fn runs; fn may free it (the loop does not touch it after).
  void post_task(LoopTask* task);
  // Any thread: finish pending tasks, then close every handle and leave the
  // loop. Owners close their handles (with callbacks) before calling this.
  void stop();
  void join();

  bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_.load(); }
  size_t inbox_length() const { return inbox_.length(); }
  // Wake-ups sent to this loop by post() (any thread reads it; for metrics and tests).
  uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

  // At most this many posted tasks run per loop turn: a flood of posts (or a
  // task that keeps posting) cannot starve the loop's sockets and timers.
  static constexpr size_t max_tasks_per_turn = 1024;

  // One read buffer per loop, not per connection (memory per session).
  // Valid from an alloc callback to the matching read callback.
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t read_buffer_size = 64 * 1024;
  // Scratch strings reused by every connection of this loop in its read path.
  std::string& scratch_plaintext() { return scratch_plaintext_; }
  std::string& scratch_outgoing() { return scratch_outgoing_; }

 private:
  static void on_async(uv_async_t* handle);
  void drain(size_t limit);
  // Wakes the loop: a write to its eventfd. Not uv_async_send: libuv's (1.44) loop
  // spins on an async handle whose sender is still inside that write, and at light
  // load, where every cross-loop post wakes the other loop, the woken side reached it
  // before the sender had left the syscall: 14% of parleyd's CPU in that spin
  // (perf, 1,000 msg/s; BENCHMARKS.md "Session 15").
  void wake();

  unsigned index_;
  uv_loop_t loop_{};
#if defined(__linux__)
  int wake_fd_ = -1;  // an eventfd, read by wake_poll_ on the loop
  uv_poll_t wake_poll_{};
  static void on_wake(uv_poll_t* handle, int status, int events);
#endif
  uv_async_t async_{};  // where there is no eventfd
  IntrusiveMpscQueue inbox_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> wakeups_{0};
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  Task thread_init_;
  std::unique_ptr<char[]> read_buffer_;
  std::string scratch_plaintext_;
  std::string scratch_outgoing_;
};

}  // namespace parley
