#include "worker.hpp"

#include <future>

namespace parley::bench {

Worker::Worker(unsigned index) : index_(index), read_buffer_(new char[kReadBufferSize]) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &Worker::on_async);
  async_.data = this;
  thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
}

Worker::~Worker() {
  stop();
  uv_loop_close(&loop_);
}

void Worker::post(Task task) {
  {
    std::lock_guard lock(mutex_);
    inbox_.push_back(std::move(task));
  }
  uv_async_send(&async_);
}

void Worker::run_sync(Task task) {
  std::promise<void> done;
  post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

void Worker::on_async(uv_async_t* handle) { static_cast<Worker*>(handle->data)->drain(); }

void Worker::drain() {
  std::vector<Task> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
  if (stopping_) {
    // Whatever an owner forgot: close it, or uv_run would never return.
    uv_walk(&loop_, [](uv_handle_t* h, void*) {
      if (!uv_is_closing(h)) uv_close(h, nullptr);
    }, nullptr);
  }
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  post([this] { stopping_ = true; });
  thread_.join();
}

}  // namespace parley::bench
