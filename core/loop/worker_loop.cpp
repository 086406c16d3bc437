#include "core/loop/worker_loop.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace parley {

WorkerLoop::WorkerLoop(unsigned index) : index_(index), read_buffer_(new char[read_buffer_size]) {
  uv_loop_init(&loop_);
#if defined(__linux__)
  // As the async handle it replaces, the poll keeps the loop running until stop()
  // closes it with every other handle.
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0 || uv_poll_init(&loop_, &wake_poll_, wake_fd_) != 0) {
    spdlog::critical("loop {}: no eventfd for wake-ups (errno {})", index_, errno);
    std::abort();
  }
  wake_poll_.data = this;
  uv_poll_start(&wake_poll_, UV_READABLE, &WorkerLoop::on_wake);
#else
  uv_async_init(&loop_, &async_, &WorkerLoop::on_async);
  async_.data = this;
#endif
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
#if defined(__linux__)
  if (wake_fd_ >= 0) close(wake_fd_);
#endif
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
  wake();
}

void WorkerLoop::wake() {
#if defined(__linux__)
  const uint64_t one = 1;
  // EAGAIN only past 2^64 - 2 unread wake-ups; EINTR is retried.
  while (write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
#else
  uv_async_send(&async_);
#endif
}

#if defined(__linux__)
void WorkerLoop::on_wake(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<WorkerLoop*>(handle->data);
  if (status < 0) return;
  uint64_t count = 0;
  // Read before draining: a post that finds the inbox empty after this writes again.
  while (read(self->wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  self->drain(max_tasks_per_turn);
}
#endif

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
  if (inbox_.length() > 0 && !stopping_.load(std::memory_order_relaxed)) wake();
}

}  // namespace parley
