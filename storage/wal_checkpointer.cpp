#include "storage/wal_checkpointer.hpp"

#include <pthread.h>

#include <utility>

namespace parley::storage {

WalCheckpointer::WalCheckpointer(std::string path, int pages, int restart_pages)
    : path_(std::move(path)), pages_(pages), restart_pages_(restart_pages) {}

WalCheckpointer::~WalCheckpointer() { stop(); }

Result<void, Error> WalCheckpointer::start(Database& writer) {
  auto conn = Database::open(path_, Database::Mode::read_write);
  if (!conn) return unexpected(std::move(conn).error());
  conn_ = std::move(*conn);
  writer_ = &writer;
  thread_ = std::thread([this] { run(); });
  sqlite3_wal_hook(writer.handle(), &WalCheckpointer::on_commit, this);
  return {};
}

void WalCheckpointer::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  // Back to SQLite's own: what the writer commits from now on (nothing, as a rule) is
  // checkpointed as before, and its close checkpoints the rest.
  sqlite3_wal_autocheckpoint(writer_->handle(), kPages);
  conn_.reset();
}

// On the writer's thread, after each commit (`pages`: the WAL's length in frames).
int WalCheckpointer::on_commit(void* self, sqlite3* db, const char* name, int pages) {
  auto* me = static_cast<WalCheckpointer*>(self);
  if (pages >= me->restart_pages_) {
    // Outrun: wait for the copy (the busy timeout covers the thread's passive one) and
    // start the WAL over. Failure (busy past the timeout) is left to the next commit.
    int log = 0;
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, &log, &copied) == SQLITE_OK)
      me->restarts_.fetch_add(1, std::memory_order_relaxed);
    return SQLITE_OK;
  }
  if (pages < me->pages_) return SQLITE_OK;
  {
    std::lock_guard lock(me->mutex_);
    if (me->wanted_) return SQLITE_OK;
    me->wanted_ = true;
  }
  me->wake_.notify_one();
  return SQLITE_OK;
}

void WalCheckpointer::run() {
  pthread_setname_np(pthread_self(), "parley-ckpt");
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    int log = 0;
    int copied = 0;
    // PASSIVE: copies what no reader still needs, never waits; SQLITE_BUSY (another
    // checkpoint under way) leaves it to the next signal.
    if (sqlite3_wal_checkpoint_v2(conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) == SQLITE_OK)
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

}  // namespace parley::storage
