// storage/sqlite_keyval_store.hpp - the keyval store (and the map store) on SQLite, in a database file of its
// own beside the main one ("parley.db" -> "parley-keyval.db"): its writes do not queue
// behind the main writer (logins, offline messages), and SQLite's writer lock is per file.
//
// One thread owns the connection and runs the operations in the order they were queued,
// what is queued (up to kMaxBatch) in one transaction (group commit), each operation in a
// savepoint of its own (a put refused over its quota undoes only itself). Completions run
// after the commit: nothing is reported stored before it is.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "storage/database.hpp"
#include "storage/error.hpp"
#include "storage/keyval_op.hpp"
#include "storage/keyval_store.hpp"
#include "storage/map_store.hpp"
#include "storage/op_queue.hpp"

namespace parley::storage {

namespace sqlite_keyval {
// The "keyval" component's migration steps.
std::span<const std::string_view> migrations();
// The operations, synchronous, on a migrated read-write connection (the store runs them
// on its thread, inside its transaction; the unit tests call them directly).
Result<std::optional<std::string>, KeyvalError> get(Database& db, const KeyvalOwner& owner, const std::string& key);
Result<std::vector<KeyvalItem>, KeyvalError> list(Database& db, const KeyvalOwner& owner);
// `key` of each of `users` (scope `scope`) that has it, as items keyed by the user:
// KeyvalStore::kGetManyChunk users per statement (an IN list of that many parameters,
// the last chunk's unused ones NULL: one prepared statement for every chunk).
Result<std::vector<KeyvalItem>, KeyvalError> get_many(Database& db, const std::string& scope,
                                                      std::span<const std::string> users, const std::string& key);
Result<void, KeyvalError> put(Database& db, const KeyvalOwner& owner, const std::vector<KeyvalItem>& items,
                              uint64_t max_user_bytes, KeyvalPut mode);
Result<uint64_t, KeyvalError> remove(Database& db, const KeyvalOwner& owner, const std::string& key);
Result<uint64_t, KeyvalError> remove_user(Database& db, const KeyvalOwner& owner);
}  // namespace sqlite_keyval

namespace sqlite_map {
// The map store's operations (sqlite_map.cpp), on the same migrated connection (the
// "keyval" component's steps make its tables too).
Result<MapSnapshot, KeyvalError> get(Database& db, const MapOwner& owner);
Result<MapChange, KeyvalError> put(Database& db, const MapOwner& owner, const std::vector<MapItem>& items,
                                   uint64_t max_items);
Result<MapChange, KeyvalError> remove(Database& db, const MapOwner& owner, const std::vector<std::string>& keys);
Result<MapChange, KeyvalError> clear(Database& db, const MapOwner& owner);
}  // namespace sqlite_map

class SqliteKeyvalStore final : public KeyvalStore, public MapStore {
 public:
  static constexpr size_t kMaxBatch = 256;

  // max_queue: operations waiting at most; beyond it an operation fails at once with
  // resource-constraint.
  SqliteKeyvalStore(std::string path, size_t max_queue);
  ~SqliteKeyvalStore() override;  // stop()

  // Opens the file (creating it), migrates it and starts the thread.
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

 private:
  void push(KeyvalOp&& op);
  void run_batch(OpBatch<KeyvalOp>& batch);

  std::string path_;
  std::unique_ptr<Database> db_;
  std::thread thread_;
  OpQueue<KeyvalOp> queue_;
  bool started_ = false;
  std::mutex lifecycle_;
};

}  // namespace parley::storage
