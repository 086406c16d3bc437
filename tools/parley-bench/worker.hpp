// tools/parley-bench/worker.hpp - one libuv loop on its own thread.
//
// The generator runs one loop per thread so that it is never the bottleneck; a client lives on one
// worker for its whole life and is touched only from that worker's thread. The main thread reaches a
// worker only through post().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace parley::bench {

class Worker {
 public:
  using Task = std::function<void()>;

  explicit Worker(unsigned index);
  ~Worker();  // stop()s if still running
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  unsigned index() const { return index_; }
  uv_loop_t* loop() { return &loop_; }

  // Any thread: run `task` on the worker's thread, in posting order.
  void post(Task task);
  // Any thread but the worker's: run `task` there and wait until it has run.
  void run_sync(Task task);
  // Closes every handle still open (owners should have closed theirs), leaves the loop, joins.
  void stop();

  // One read buffer per loop: valid from an alloc callback to the matching read callback.
  static constexpr size_t kReadBufferSize = 64 * 1024;
  char* read_buffer() { return read_buffer_.get(); }

 private:
  static void on_async(uv_async_t* handle);
  void drain();

  unsigned index_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  std::mutex mutex_;
  std::vector<Task> inbox_;
  bool stopping_ = false;
  std::unique_ptr<char[]> read_buffer_;
  std::thread thread_;
};

}  // namespace parley::bench
