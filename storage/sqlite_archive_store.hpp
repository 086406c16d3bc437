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

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "storage/archive_key_ids.hpp"
#include "storage/archive_store.hpp"
#include "storage/archive_totals.hpp"
#include "storage/database.hpp"
#include "storage/error.hpp"
#include "storage/op_queue.hpp"
#include "storage/wal_checkpointer.hpp"

namespace parley::storage {

namespace sqlite_archive {
// The "archive" component's migration steps.
std::span<const std::string_view> migrations();

// The integer keys the archive's indexes are made of (schema step 2): an owner (scope and
// bare JID) and a bare JID it talks with each have a row id in archive_owner / archive_jid,
// cached here so that an append of a known owner and correspondent reads no table but the
// archive's own (committed ids only: archive_key_ids.hpp). One per connection, used on its
// thread only.
class Keys {
 public:
  // The owner's id; 0 when it has none and `create` is false.
  Result<int64_t, Error> owner(Database& db, std::string_view scope, std::string_view owner, bool create);
  Result<int64_t, Error> owner(Database& db, const ArchiveKey& key, bool create) {
    return owner(db, key.scope, key.owner, create);
  }
  // The id of a bare JID; 0 when it has none and `create` is false.
  Result<int64_t, Error> jid(Database& db, std::string_view bare, bool create);
  // The transaction the ids since the last call were read or made in ended: committed,
  // they are cached; otherwise forgotten (and every archive's total).
  void end_transaction(bool committed);
  // The archives' sizes as this thread's transactions see them (archive_totals.hpp).
  ArchiveTotals& totals() { return totals_; }

 private:
  // key_ holds the key (made by owner() or jid()): looked up without a string made per call.
  Result<int64_t, Error> lookup(Database& db, bool create, bool is_owner);

  ArchiveKeyIds ids_;
  std::string key_;
  ArchiveTotals totals_;
};

// The operations themselves, synchronous, on a migrated read-write connection (the store
// runs them on its thread; the unit tests call them directly).
Result<void, ArchiveError> append(Database& db, Keys& keys, const PackedAppend& entry);
// The same from owned strings (the unit tests).
Result<void, ArchiveError> append(Database& db, Keys& keys, const ArchiveKey& key, const ArchiveEntry& entry);
Result<ArchivePage, ArchiveError> query(Database& db, Keys& keys, const ArchiveQuery& query);
Result<uint64_t, ArchiveError> remove(Database& db, Keys& keys, const ArchiveKey& key, int64_t before_us);
}  // namespace sqlite_archive

class SqliteArchiveStore final : public ArchiveStore {
 public:
  // A batch's operations at most. At saturation the queue stays near the pace mark
  // (limits.archive_pace_queue, 4,096), and a batch of that many writes each index leaf it
  // touches once for many appends: 4,096 against 256 cut the WAL written per message by a
  // fifth and the archive thread's CPU by an eighth (BENCHMARKS.md, "Session 17").
  static constexpr size_t kMaxBatch = 4096;
  // The connection's page cache, at most (PRAGMA cache_size), for such batches.
  static constexpr size_t kCacheKiB = 16384;

  // max_queue: operations waiting at most; beyond it an operation fails at once with
  // resource-constraint (every queue is bounded).
  SqliteArchiveStore(std::string path, size_t max_queue);
  ~SqliteArchiveStore() override;  // stop()

  // Opens the file (creating it), migrates it and starts the thread.
  Result<void, Error> start();

  using ArchiveStore::append;
  uint64_t append(const ArchiveAppend& entry, AppendDone done) override;
  void query(ArchiveQuery query, QueryDone done) override;
  void remove(ArchiveKey key, int64_t before_us, RemoveDone done) override;
  size_t queue_length() const override { return queue_.length(); }
  void stop() override;

  const std::string& path() const { return path_; }

 private:
  // A queued operation. Appends are nearly all of them: a query or a removal keeps its
  // fields in a block of its own, so that the queue's slots stay small.
  struct Request {
    ArchiveKey key;  // remove
    ArchiveQuery query;
    int64_t before_us = 0;
    QueryDone on_query;
    RemoveDone on_remove;
  };
  struct Op {
    enum class Kind { append, query, remove } kind = Kind::append;
    PackedAppend entry;  // append
    AppendDone on_append;
    std::unique_ptr<Request> request;  // query, remove
    std::string take_buffer() { return entry.take_bytes(); }  // recycled: OpQueue::push_built
  };

  bool push(Op&& op, uint64_t* id = nullptr);
  // The new append's id, made under the queue's lock as it takes its place.
  void give_id(Op& op, uint64_t* id);
  void fail(Op& op, ArchiveError error);
  void run();
  void run_batch(OpBatch<Op>& batch);

  std::string path_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // db_'s checkpoints, off the store's thread
  sqlite_archive::Keys keys_;  // the store thread's (after start)
  std::thread thread_;
  OpQueue<Op> queue_;
  uint64_t last_id_ = 0;  // guarded by queue_'s lock: the last id given (read from the file at start)
  bool started_ = false;
  std::mutex lifecycle_;
};

}  // namespace parley::storage
