// storage/postgres_keyval_store.hpp - the keyval store (and the map store) on PostgreSQL: the same KeyvalStore
// interface and semantics as SqliteKeyvalStore (operations in queue order, what is queued
// in one transaction, each operation in a savepoint of its own, completions after the
// commit).
//
// One thread of the store's own owns one connection (pg_store_loop.hpp: libpq with
// deadlines, reconnect with back-off). The database going away: gets fail at once with
// internal-server-error; puts and removals wait in the queue (bounded: beyond max_queue
// new ones fail at once) and are reported done only once a commit says so. A batch cut by
// the loss goes back to the head of the queue and runs again: every write is idempotent
// (a put sets the same values again, a removal removes nothing more), so a commit that
// landed though its answer was lost does no harm when repeated (a map's version may then
// go up once more than needed, which a version may: it only has to grow; and a repeated
// removal reports the keys it found, none).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "storage/error.hpp"
#include "storage/keyval_op.hpp"
#include "storage/keyval_store.hpp"
#include "storage/map_store.hpp"
#include "storage/op_queue.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_store_loop.hpp"

namespace parley::storage {

namespace postgres_keyval {
// The "keyval" component's migration steps (PostgreSQL dialect).
std::span<const std::string_view> migrations();
// The operations, synchronous, on a migrated connection (inside the store's transaction;
// the unit tests call them directly). An over-quota put is a PgError with sqlstate
// kOverQuota, after which the caller rolls back (the store: to the op's savepoint).
Result<std::optional<std::string>, PgError> get(PgConnection& db, const KeyvalOwner& owner, const std::string& key);
Result<std::vector<KeyvalItem>, PgError> list(PgConnection& db, const KeyvalOwner& owner);
// `key` of each of `users` (scope `scope`) that has it, as items keyed by the user:
// KeyvalStore::kGetManyChunk users per statement (the users as a text[] in binary format,
// unnest()ed, a primary-key lookup each: one prepared statement, nothing to quote).
Result<std::vector<KeyvalItem>, PgError> get_many(PgConnection& db, const std::string& scope,
                                                  std::span<const std::string> users, const std::string& key);
Result<void, PgError> put(PgConnection& db, const KeyvalOwner& owner, const std::vector<KeyvalItem>& items,
                          uint64_t max_user_bytes, KeyvalPut mode);
Result<uint64_t, PgError> remove(PgConnection& db, const KeyvalOwner& owner, const std::string& key);
Result<uint64_t, PgError> remove_user(PgConnection& db, const KeyvalOwner& owner);
inline constexpr std::string_view kOverQuota = "policy-violation";
}  // namespace postgres_keyval

namespace postgres_map {
// The map store's operations (postgres_map.cpp), inside the store's transaction. Over
// max_items: a PgError with sqlstate postgres_keyval::kOverQuota.
Result<MapSnapshot, PgError> get(PgConnection& db, const MapOwner& owner);
Result<MapChange, PgError> put(PgConnection& db, const MapOwner& owner, const std::vector<MapItem>& items,
                               uint64_t max_items);
Result<MapChange, PgError> remove(PgConnection& db, const MapOwner& owner, const std::vector<std::string>& keys);
Result<MapChange, PgError> clear(PgConnection& db, const MapOwner& owner);
}  // namespace postgres_map

class PostgresKeyvalStore final : public KeyvalStore, public MapStore {
 public:
  static constexpr size_t kMaxBatch = 256;

  PostgresKeyvalStore(std::string url, size_t max_queue);
  ~PostgresKeyvalStore() override;  // stop()

  // Messages for the log (connection lost, reconnected), from the store's thread.
  void set_log(std::function<void(std::string_view)> log) { link_.set_log(std::move(log)); }
  // How long stop() keeps trying to store what is queued while the database is away.
  void set_stop_grace(std::chrono::milliseconds grace) { stop_grace_ = grace; }

  // Connects, migrates and starts the thread; an error if the database cannot be reached.
  Result<void, Error> start();

  void get(KeyvalOwner owner, std::string key, GetDone done) override;
  void list(KeyvalOwner owner, ListDone done) override;
  void get_many(std::string scope, std::vector<std::string> users, std::string key, GetManyDone done) override;
  void put(KeyvalOwner owner, std::vector<KeyvalItem> items, uint64_t max_user_bytes, KeyvalPut mode,
           PutDone done) override;
  void remove(KeyvalOwner owner, std::string key, RemoveDone done) override;
  void remove_user(KeyvalOwner owner, RemoveDone done) override;
  void map_get(MapOwner owner, MapStore::SnapshotDone done) override;
  void map_put(MapOwner owner, std::vector<MapItem> items, uint64_t max_items, ChangeDone done) override;
  void map_remove(MapOwner owner, std::vector<std::string> keys, ChangeDone done) override;
  void map_clear(MapOwner owner, ChangeDone done) override;
  size_t queue_length() const override { return queue_.length(); }
  void stop() override;

  bool connected() const { return link_.connected(); }

 private:
  void push(KeyvalOp&& op);
  void run_batch(OpBatch<KeyvalOp>& batch);
  void run_reads(OpBatch<KeyvalOp>& batch);
  static std::optional<PgError> run_op(PgConnection& db, KeyvalOp& op, KeyvalOp::Outcome& out);
  void requeue(OpBatch<KeyvalOp>& batch);

  PgLink link_;
  std::chrono::milliseconds stop_grace_{5000};
  std::thread thread_;
  OpQueue<KeyvalOp> queue_;
  bool started_ = false;
  std::mutex lifecycle_;
};

}  // namespace parley::storage
