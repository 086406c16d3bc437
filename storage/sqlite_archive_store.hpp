// storage/sqlite_archive_store.hpp - the archive store on SQLite, in a database file of
// its own (not the server's main file): its writes never queue behind logins, offline
// messages or other modules' writes on the main writer, and SQLite's one-writer lock is
// per file, so both files commit side by side.
//
// One thread owns the connection and runs the operations in the order they were queued.
// It takes what is queued (up to kMaxBatch) and runs it in one transaction: a burst of
// appends costs one commit (group commit), and a query sees every append queued before it
// (read-your-writes for the client that sent a message and then asks for the archive).
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "storage/archive_store.hpp"
#include "storage/database.hpp"
#include "storage/error.hpp"
#include "storage/op_queue.hpp"

namespace parley::storage {

namespace sqlite_archive {
// The "archive" component's migration steps.
std::span<const std::string_view> migrations();
// The operations themselves, synchronous, on a migrated read-write connection (the store
// runs them on its thread; the unit tests call them directly).
Result<void, ArchiveError> append(Database& db, const ArchiveKey& key, const ArchiveEntry& entry);
Result<ArchivePage, ArchiveError> query(Database& db, const ArchiveQuery& query);
Result<uint64_t, ArchiveError> remove(Database& db, const ArchiveKey& key, int64_t before_us);
}  // namespace sqlite_archive

class SqliteArchiveStore final : public ArchiveStore {
 public:
  static constexpr size_t kMaxBatch = 256;

  // max_queue: operations waiting at most; beyond it an operation fails at once with
  // resource-constraint (every queue is bounded).
  SqliteArchiveStore(std::string path, size_t max_queue);
  ~SqliteArchiveStore() override;  // stop()

  // Opens the file (creating it), migrates it and starts the thread.
  Result<void, Error> start();

  uint64_t append(ArchiveKey key, ArchiveEntry entry, AppendDone done) override;
  void query(ArchiveQuery query, QueryDone done) override;
  void remove(ArchiveKey key, int64_t before_us, RemoveDone done) override;
  size_t queue_length() const override { return queue_.length(); }
  void stop() override;

  const std::string& path() const { return path_; }

 private:
  struct Op {
    enum class Kind { append, query, remove } kind;
    ArchiveKey key;
    ArchiveEntry entry;
    ArchiveQuery query;
    int64_t before_us = 0;
    AppendDone on_append;
    QueryDone on_query;
    RemoveDone on_remove;
  };

  bool push(Op&& op, uint64_t* id = nullptr);
  void fail(Op& op, ArchiveError error);
  void run();
  void run_batch(std::deque<Op>& batch);

  std::string path_;
  std::unique_ptr<Database> db_;
  std::thread thread_;
  OpQueue<Op> queue_;
  uint64_t last_id_ = 0;  // guarded by queue_'s lock: the last id given (read from the file at start)
  bool started_ = false;
  std::mutex lifecycle_;
};

}  // namespace parley::storage
