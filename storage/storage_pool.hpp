// storage/storage_pool.hpp - the off-loop worker: one writer thread and R reader threads,
// each with its own connection, fed by two FIFO queues.
//
// Reads and writes queue separately so a burst of slow writes never delays a read (and
// the reverse): the head-of-line lesson. SQLite allows one writer at a time anyway, so
// one writer thread serializes writes without lock contention, while WAL lets the readers
// run beside it. Jobs deliver their own results (the core posts back to its loop through
// uv_async); the pool knows nothing of libuv.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "parley/result.hpp"
#include "storage/database.hpp"
#include "storage/error.hpp"

namespace parley::storage {

class StoragePool {
 public:
  using Job = std::function<void(Database&)>;
  using ErrorHandler = std::function<void(std::string_view)>;

  // readers == 0 is taken as 1: reads always have a thread of their own.
  StoragePool(std::string path, unsigned readers);
  ~StoragePool();  // stop()
  StoragePool(const StoragePool&) = delete;
  StoragePool& operator=(const StoragePool&) = delete;

  // Where a job's escaped exception (and a job dropped after stop) is reported; stderr
  // by default. Set it before start(); it is called on the pool's threads.
  void set_error_handler(ErrorHandler handler);

  // Opens the writer's connection, runs the built-in migrations on it, then opens the
  // readers' connections and starts the threads. Returns after all of that.
  Result<void, Error> start();

  // Queue a job. Jobs queued before start() run once it succeeds; a job queued after
  // stop() began is dropped and reported to the error handler.
  void read(Job job);   // on a reader thread, read-only connection
  void write(Job job);  // on the writer thread

  // Jobs waiting (not those running): the health gauges the metrics expose.
  size_t read_queue_length() const { return read_queue_.length.load(std::memory_order_relaxed); }
  size_t write_queue_length() const { return write_queue_.length.load(std::memory_order_relaxed); }

  // Runs every job already queued, then joins the threads. Idempotent.
  void stop();

  const std::string& path() const { return path_; }
  unsigned readers() const { return readers_; }

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Job> jobs;
    std::atomic<size_t> length{0};
    bool stopping = false;  // guarded by mutex
  };

  bool push(Queue& queue, Job&& job);
  void run(Queue& queue, Database& db);
  void report(std::string_view message);

  std::string path_;
  unsigned readers_;
  ErrorHandler on_error_;
  Queue read_queue_;
  Queue write_queue_;
  std::vector<std::unique_ptr<Database>> connections_;  // [0] the writer's
  std::vector<std::thread> threads_;
  std::mutex lifecycle_;  // start() and stop() against each other
  bool started_ = false;
};

}  // namespace parley::storage
