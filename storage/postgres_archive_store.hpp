// storage/postgres_archive_store.hpp - the archive store on PostgreSQL: the same
// ArchiveStore interface and semantics as SqliteArchiveStore (ids made at queue time,
// operations in queue order, a query sees every append queued before it, group commit).
//
// One thread of the store's own owns one connection (libpq's asynchronous API with
// deadlines: see PgConnection) and runs what is queued (up to kMaxBatch) in one
// transaction. Callers only push to a bounded queue under a mutex: nothing on a loop ever
// waits for the database.
//
// The database going away: the thread reconnects with back-off (100 ms doubling to 5 s).
// Meanwhile appends and removals wait in the queue (beyond max_queue new ones are
// refused: the message is delivered, not archived) and are reported stored only once a
// commit says so; queries fail at once with internal-server-error. A batch cut by the loss
// of the connection goes back to the head of the queue: its appends are retried with
// INSERT ... ON CONFLICT DO NOTHING (the id is the store's: if the lost commit did land,
// the retry is a no-op, never a duplicate).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/archive_key_ids.hpp"
#include "storage/archive_store.hpp"
#include "storage/archive_totals.hpp"
#include "storage/error.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_store_loop.hpp"

namespace parley::storage {

namespace postgres_archive {
// The "archive" component's migration steps (PostgreSQL dialect).
std::span<const std::string_view> migrations();
// The operations, synchronous, on a migrated connection (the store runs them on its
// thread; the unit tests call them directly). retry: an append that may already be stored
// (see above): an existing id is then success.
//
// The integer keys of the archive's indexes (schema step 3), as the SQLite store's Keys:
// an owner (scope and bare JID) and a bare JID it talks with each have a row id in
// archive_owner / archive_jid, cached here (committed ids only: archive_key_ids.hpp). One
// per connection, used on its thread only.
class PgKeys {
 public:
  // The ids of the owner and the correspondent (bare) of each entry, made where missing,
  // in the connection's transaction: two statements for the ones not cached.
  Result<void, PgError> resolve(PgConnection& db, std::span<const PackedAppend* const> entries,
                                std::vector<int64_t>& owner_ids, std::vector<int64_t>& with_ids);
  // The transaction the ids since the last call were read or made in has ended.
  void end_transaction(bool committed) { ids_.end_transaction(committed); }

 private:
  ArchiveKeyIds ids_;
  std::string key_;
};

Result<void, PgError> append(PgConnection& db, PgKeys& keys, const ArchiveKey& key, const ArchiveEntry& entry,
                             bool retry = false);
// Several appends in one statement (and the keys' two, for those not cached).
Result<void, PgError> append_many(PgConnection& db, PgKeys& keys, std::span<const PackedAppend* const> entries,
                                  bool retry = false);
// `totals`: the store thread's archive sizes (archive_totals.hpp), read and kept; none: every total counted.
Result<ArchivePage, PgError> query(PgConnection& db, const ArchiveQuery& query, ArchiveTotals* totals = nullptr);
Result<uint64_t, PgError> remove(PgConnection& db, const ArchiveKey& key, int64_t before_us);
// A query's item-not-found is a PgError with this sqlstate (not the database's).
inline constexpr std::string_view kNotFound = "item-not-found";
}  // namespace postgres_archive

class PostgresArchiveStore final : public ArchiveStore {
 public:
  // A batch's operations at most: one statement for its appends (arrays), one commit. At
  // saturation the queue stays near the pace mark (4,096), and PostgreSQL, the bottleneck,
  // spent less per append on batches that large: 26,900 -> 30,400 messages/s against 256
  // (BENCHMARKS.md, "Session 17").
  static constexpr size_t kMaxBatch = 4096;

  PostgresArchiveStore(std::string url, size_t max_queue);
  ~PostgresArchiveStore() override;  // stop()

  // Messages for the log (connection lost, reconnected), from the store's thread.
  void set_log(std::function<void(std::string_view)> log) { link_.set_log(std::move(log)); }
  // How long stop() keeps trying to store what is queued while the database is away.
  void set_stop_grace(std::chrono::milliseconds grace) { stop_grace_ = grace; }

  // Connects, migrates and starts the thread; an error if the database cannot be reached
  // now (a server does not start on a database it never saw).
  Result<void, Error> start();

  using ArchiveStore::append;
  uint64_t append(const ArchiveAppend& entry, AppendDone done) override;
  void query(ArchiveQuery query, QueryDone done) override;
  void remove(ArchiveKey key, int64_t before_us, RemoveDone done) override;
  size_t queue_length() const override { return queue_.length(); }
  void stop() override;

  bool connected() const { return link_.connected(); }
  bool available() const override { return connected(); }

 private:
  // A queued operation (as the SQLite store's: appends small, the rest in a block of its own).
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
    bool retry = false;  // an append of a batch cut by a lost connection
    std::string take_buffer() { return entry.take_bytes(); }  // recycled: OpQueue::push_built
  };

  bool push(Op&& op, uint64_t* id = nullptr);
  // The new append's id, made under the queue's lock as it takes its place.
  void give_id(Op& op, uint64_t* id);
  void fail(Op& op, ArchiveError error);
  void run();
  // false: the connection broke; the batch's writes were put back at the queue's head.
  bool run_batch(OpBatch<Op>& batch);
  void run_one_by_one(OpBatch<Op>& batch);
  void requeue(OpBatch<Op>& batch, size_t from);

  PgLink link_;  // the thread's connection
  std::chrono::milliseconds stop_grace_{5000};
  std::thread thread_;
  OpQueue<Op> queue_;
  uint64_t last_id_ = 0;  // guarded by queue_'s lock
  ArchiveTotals totals_;  // the thread's
  postgres_archive::PgKeys keys_;  // the thread's
  bool started_ = false;
  std::mutex lifecycle_;
};

}  // namespace parley::storage
