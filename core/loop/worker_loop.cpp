#include "core/loop/worker_loop.hpp"

#include <spdlog/spdlog.h>

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
}

void WorkerLoop::start_thread() {
  thread_ = std::thread([this] { run_here(); });
}

void WorkerLoop::run_here() {
  thread_id_.store(std::this_thread::get_id());
  if (thread_init_) thread_init_();
  uv_run(&loop_, UV_RUN_DEFAULT);
  drain();
}

void WorkerLoop::post(Task task) {
  inbox_.push(std::move(task));
  uv_async_send(&async_);
}

void WorkerLoop::stop() {
  post([this] {
    stopping_ = true;
    drain();
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

void WorkerLoop::on_async(uv_async_t* handle) { static_cast<WorkerLoop*>(handle->data)->drain(); }

void WorkerLoop::drain() {
  while (auto task = inbox_.pop()) {
    try {
      (*task)();
    } catch (const std::exception& e) {
      // Nothing may unwind through libuv; a failing task is a bug, logged loudly.
      spdlog::error("loop {}: task threw: {}", index_, e.what());
    } catch (...) {
      spdlog::error("loop {}: task threw a non-exception", index_);
    }
  }
}

}  // namespace parley
