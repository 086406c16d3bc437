#include "storage/storage_pool.hpp"

#include <cstdio>
#include <exception>

#include "storage/schema.hpp"

namespace parley::storage {

StoragePool::StoragePool(std::string path, unsigned readers)
    : path_(std::move(path)), readers_(readers == 0 ? 1 : readers) {
  on_error_ = [](std::string_view message) {
    std::fprintf(stderr, "parley storage: %.*s\n", static_cast<int>(message.size()), message.data());
  };
}

StoragePool::~StoragePool() { stop(); }

void StoragePool::set_error_handler(ErrorHandler handler) {
  if (handler) on_error_ = std::move(handler);
}

void StoragePool::report(std::string_view message) {
  try {
    on_error_(message);
  } catch (...) {
    // The handler is the last resort; nothing is left to tell.
  }
}

Result<void, Error> StoragePool::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "storage pool already started"});
  {
    std::scoped_lock queues(read_queue_.mutex, write_queue_.mutex);
    if (read_queue_.stopping) return unexpected(Error{0, "storage pool already stopped"});
  }
  std::vector<std::unique_ptr<Database>> connections;
  auto writer = Database::open(path_, Database::Mode::read_write);
  if (!writer) return unexpected(std::move(writer).error());
  if (auto r = migrate_builtin(**writer); !r) return r;
  connections.push_back(std::move(*writer));
  // Readers open after the migrations: the file then exists, in WAL mode, with its tables.
  for (unsigned i = 0; i < readers_; ++i) {
    auto reader = Database::open(path_, Database::Mode::read_only);
    if (!reader) return unexpected(std::move(reader).error());
    connections.push_back(std::move(*reader));
  }
  connections_ = std::move(connections);
  threads_.emplace_back([this] { run(write_queue_, *connections_[0]); });
  for (unsigned i = 0; i < readers_; ++i) {
    threads_.emplace_back([this, i] { run(read_queue_, *connections_[i + 1]); });
  }
  started_ = true;
  return {};
}

bool StoragePool::push(Queue& queue, Job&& job) {
  {
    std::lock_guard lock(queue.mutex);
    if (queue.stopping) return false;
    queue.jobs.push_back(std::move(job));
    queue.length.fetch_add(1, std::memory_order_relaxed);
  }
  queue.ready.notify_one();
  return true;
}

void StoragePool::read(Job job) {
  if (!push(read_queue_, std::move(job))) report("read job dropped: the pool is stopping");
}

void StoragePool::write(Job job) {
  if (!push(write_queue_, std::move(job))) report("write job dropped: the pool is stopping");
}

void StoragePool::run(Queue& queue, Database& db) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(queue.mutex);
      queue.ready.wait(lock, [&] { return queue.stopping || !queue.jobs.empty(); });
      if (queue.jobs.empty()) return;  // stopping, and drained
      job = std::move(queue.jobs.front());
      queue.jobs.pop_front();
      queue.length.fetch_sub(1, std::memory_order_relaxed);
    }
    try {
      job(db);
    } catch (const std::exception& e) {
      report(std::string("a storage job threw: ") + e.what());
    } catch (...) {
      report("a storage job threw a non-standard exception");
    }
    // A job that left a statement mid-way or a transaction open must not leak it into
    // the next job: an open read snapshot would hide later commits.
    db.reset_statements();
    if (db.in_transaction()) {
      report("a storage job left a transaction open; rolled back");
      (void)db.exec("ROLLBACK");
    }
  }
}

void StoragePool::stop() {
  std::lock_guard lock(lifecycle_);
  for (Queue* q : {&read_queue_, &write_queue_}) {
    {
      std::lock_guard ql(q->mutex);
      q->stopping = true;
    }
    q->ready.notify_all();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  connections_.clear();
  // Jobs queued before a start() that never came (or failed) cannot run.
  for (Queue* q : {&read_queue_, &write_queue_}) {
    std::lock_guard ql(q->mutex);
    if (!q->jobs.empty()) {
      report(std::to_string(q->jobs.size()) + " job(s) dropped: the pool never started");
      q->jobs.clear();
      q->length.store(0, std::memory_order_relaxed);
    }
  }
}

}  // namespace parley::storage
