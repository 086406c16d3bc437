#include "core/loop/worker_loop.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>

namespace parley {

WorkerLoop::WorkerLoop(unsigned index) : index_(index), read_buffer_(new char[read_buffer_size]) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &WorkerLoop::on_async);
  async_.data = this;
}

WorkerLoop::~WorkerLoop() {
  join();
  // Close whatever is left (the loop never ran, or stop() raced), then free it.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  // Tasks never run (posted after the loop stopped) give back what they hold.
  while (MpscNode* node = inbox_.pop()) {
    LoopTask* task = static_cast<LoopTask*>(node);
    task->fn(task, false);
  }
}

void WorkerLoop::start_thread() {
  thread_ = std::thread([this] { run_here(); });
}

void WorkerLoop::run_here() {
  thread_id_.store(std::this_thread::get_id());
  if (thread_init_) thread_init_();
  uv_run(&loop_, UV_RUN_DEFAULT);
  drain(SIZE_MAX);
}

void WorkerLoop::post_task(LoopTask* task) {
  if (!inbox_.push(task)) return;  // the loop has work queued already: it will get to this
  wakeups_.fetch_add(1, std::memory_order_relaxed);
  uv_async_send(&async_);
}

void WorkerLoop::stop() {
  post([this] {
    stopping_ = true;
    drain(SIZE_MAX);
    // Close every handle still open (owners that closed theirs earlier got
    // their callbacks already); uv_run returns once the last one is closed.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
  });
}

void WorkerLoop::join() {
  if (thread_.joinable()) thread_.join();
}

void WorkerLoop::on_async(uv_async_t* handle) {
  static_cast<WorkerLoop*>(handle->data)->drain(max_tasks_per_turn);
}

void WorkerLoop::drain(size_t limit) {
  size_t ran = 0;
  while (ran < limit) {
    MpscNode* node = inbox_.pop();
    if (node == nullptr) break;
    ++ran;
    LoopTask* task = static_cast<LoopTask*>(node);
    try {
      task->fn(task, true);
    } catch (const std::exception& e) {
      // Nothing may unwind through libuv; a failing task is a bug, logged loudly.
      spdlog::error("loop {}: task threw: {}", index_, e.what());
    } catch (...) {
      spdlog::error("loop {}: task threw a non-exception", index_);
    }
  }
  // Work left: the batch limit was reached, or a producer is between counting
  // its task and linking it (push() then sent no wake-up, counting on us).
  // Come back on the next turn, after the loop's I/O and timers.
  if (inbox_.length() > 0 && !stopping_.load(std::memory_order_relaxed)) uv_async_send(&async_);
}

}  // namespace parley
