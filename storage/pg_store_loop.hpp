// storage/pg_store_loop.hpp - the thread of a PostgreSQL store that owns one connection
// (the archive store, the keyval store): the connection, reconnected with back-off
// (100 ms doubling to 5 s) when lost, and the thread's loop over the store's OpQueue.
//
// While the database is away, reads fail at once (a client waits for their answer) and
// writes wait in the queue, to be stored, in order, once it is back; the store's
// run_batch puts a batch cut by the loss back at the head of the queue (OpQueue::put_back).
// Every connect and statement has a deadline (10 s), so a database that stops answering
// is treated as gone rather than waited for forever.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "storage/op_queue.hpp"
#include "storage/pg_connection.hpp"

namespace parley::storage {

inline constexpr auto kPgStoreConnectTimeout = std::chrono::seconds(10);
inline constexpr auto kPgStoreStatementTimeout = std::chrono::seconds(10);
inline constexpr auto kPgStoreFirstBackoff = std::chrono::milliseconds(100);
inline constexpr auto kPgStoreMaxBackoff = std::chrono::milliseconds(5000);

// The store thread's connection. `name` is for the log ("archive", "keyval").
class PgLink {
 public:
  PgLink(std::string url, std::string name) : url_(std::move(url)), name_(std::move(name)) {}

  void set_log(std::function<void(std::string_view)> log) { log_ = std::move(log); }

  // The first connection (start(): an error if the database cannot be reached now).
  Result<void, PgError> connect() {
    auto conn = PgConnection::connect(url_, kPgStoreConnectTimeout);
    if (!conn) return unexpected(conn.error());
    (*conn)->set_statement_timeout(kPgStoreStatementTimeout);
    db_ = std::move(*conn);
    connected_.store(true, std::memory_order_relaxed);
    return {};
  }
  bool reconnect() {
    db_.reset();
    if (!connect()) return false;
    log(name_ + " database reconnected");
    return true;
  }
  // Runs once per loss, on the store's thread, after connected() turned false.
  void set_on_lost(std::function<void()> fn) { on_lost_ = std::move(fn); }

  // The connection broke (or was dropped): logs it once per loss.
  void note_lost() {
    if (!connected_.exchange(false)) return;
    log(name_ + " database connection lost: reconnecting");
    if (on_lost_) on_lost_();
  }

  bool usable() const { return db_ && !db_->broken(); }
  PgConnection& db() { return *db_; }
  void drop() { db_.reset(); }
  void close() {
    db_.reset();
    connected_.store(false, std::memory_order_relaxed);
  }
  // Sequentially consistent, as the loss's exchange: a host that marks a hold and then
  // reads this, against the store that turns it false and then releases the holds.
  bool connected() const { return connected_.load(); }

  void log(const std::string& message) {
    if (!log_) return;
    try {
      log_(message);
    } catch (...) {
    }
  }

 private:
  std::string url_;
  std::string name_;
  std::function<void(std::string_view)> log_;
  std::function<void()> on_lost_;
  std::unique_ptr<PgConnection> db_;  // the store thread's
  std::atomic<bool> connected_{false};
};

// The store thread's body: batches of up to max_batch while connected; else reads
// (is_read) fail (fail_read), and the link reconnects with back-off, a read pushed
// meanwhile waking it to fail at once. Returns once stopping and drained (or stop's grace
// is over: the caller fails what is left).
template <class Op, class IsRead, class FailRead, class RunBatch>
void pg_store_run(OpQueue<Op>& queue, PgLink& link, std::size_t max_batch, IsRead&& is_read, FailRead&& fail_read,
                  RunBatch&& run_batch) {
  auto backoff = std::chrono::milliseconds(kPgStoreFirstBackoff);
  OpBatch<Op> batch;
  for (;;) {
    if (!link.usable()) {
      link.note_lost();
      for (Op& op : queue.take_if(is_read)) fail_read(op);
      if (link.reconnect()) {
        backoff = kPgStoreFirstBackoff;
        continue;
      }
      if (queue.done_stopping()) return;
      queue.wait_for(backoff, is_read);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(kPgStoreMaxBackoff));
      continue;
    }
    queue.take(max_batch, batch);
    if (batch.empty()) return;  // stopping, and drained
    run_batch(batch);
  }
}

}  // namespace parley::storage
