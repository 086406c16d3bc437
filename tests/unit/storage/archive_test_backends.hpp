// The archive store's test backends and helpers, shared by archive_store_test.cpp (every
// case on each backend) and archive_backend_test.cpp (what one backend does of its own).
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "open_db.hpp"
#include "storage/postgres_archive_store.hpp"
#include "storage/sqlite_archive_store.hpp"
#include "pg_test_support.hpp"
#include "temp_dir.hpp"

namespace parley::test::archive {

using namespace parley::storage;

using parley::test::pg_base_url;
using parley::test::pg_connect;
using parley::test::terminate_sessions_of;

inline const ArchiveKey alice{"mod_mam/example.org", "alice@example.org"};
inline const ArchiveKey bob{"mod_mam/example.org", "bob@example.org"};

using QueryResult = parley::Result<ArchivePage, ArchiveError>;

// A fresh archive on SQLite: the free functions on a migrated file, and stores on it.
struct SqliteBackend {
  parley::test::TempDir dir;
  std::unique_ptr<Database> db;
  sqlite_archive::Keys keys;

  SqliteBackend() {
    db = parley::test::open_rw(dir.file("archive.db"));
    REQUIRE(db->migrate("archive", sqlite_archive::migrations()));
  }
  bool append(const ArchiveKey& key, const ArchiveEntry& e) {
    return sqlite_archive::append(*db, keys, key, e).has_value();
  }
  QueryResult query(const ArchiveQuery& q) { return sqlite_archive::query(*db, keys, q); }
  parley::Result<uint64_t, ArchiveError> remove(const ArchiveKey& key, int64_t before) {
    return sqlite_archive::remove(*db, keys, key, before);
  }
  std::unique_ptr<SqliteArchiveStore> store(size_t max_queue) {
    return std::make_unique<SqliteArchiveStore>(dir.file("store.db"), max_queue);
  }
};

// An archive written by schema 1 (the text keys of sessions 9-11) and then migrated:
// appends go in as schema 1 wrote them until the first query or removal, which first
// brings the file to the last step (as a newer parleyd's start does), so that every case
// below also runs on rows the migration moved. Its stores start on a file of schema 1.
struct SqliteMigratedBackend {
  parley::test::TempDir dir;
  std::unique_ptr<Database> db;
  sqlite_archive::Keys keys;
  bool migrated = false;

  SqliteMigratedBackend() {
    db = parley::test::open_rw(dir.file("archive.db"));
    REQUIRE(db->migrate("archive", sqlite_archive::migrations().first(1)));
  }
  void migrate() {
    if (migrated) return;
    REQUIRE(db->migrate("archive", sqlite_archive::migrations()));
    migrated = true;
  }
  bool append(const ArchiveKey& key, const ArchiveEntry& e) {
    if (migrated) return sqlite_archive::append(*db, keys, key, e).has_value();
    if (e.id == 0) return false;
    auto st = db->prepare(
        "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    REQUIRE(st);
    Statement& s = **st;
    REQUIRE(s.bind(1, std::string_view(key.scope)));
    REQUIRE(s.bind(2, std::string_view(key.owner)));
    REQUIRE(s.bind(3, static_cast<int64_t>(e.id)));
    REQUIRE(s.bind(4, e.timestamp_us));
    REQUIRE(s.bind(5, std::string_view(archive_bare(e.with))));
    REQUIRE(s.bind(6, std::string_view(e.with)));
    REQUIRE(s.bind_blob(7, e.payload));
    bool ok = s.run().has_value();
    s.reset();
    return ok;
  }
  QueryResult query(const ArchiveQuery& q) {
    migrate();
    return sqlite_archive::query(*db, keys, q);
  }
  parley::Result<uint64_t, ArchiveError> remove(const ArchiveKey& key, int64_t before) {
    migrate();
    return sqlite_archive::remove(*db, keys, key, before);
  }
  std::unique_ptr<SqliteArchiveStore> store(size_t max_queue) {
    if (!std::filesystem::exists(dir.file("store.db"))) {
      auto old = parley::test::open_rw(dir.file("store.db"));
      REQUIRE(old->migrate("archive", sqlite_archive::migrations().first(1)));
    }
    return std::make_unique<SqliteArchiveStore>(dir.file("store.db"), max_queue);
  }
};

// A fresh archive on PostgreSQL: a schema of its own in the test database (the URL given
// to stores sets its search_path), so no case sees another's rows.
struct PgBackend : parley::test::PgSchema {
  std::unique_ptr<PgConnection> conn;

  PgBackend() : PgSchema("archive_test") {
    conn = pg_connect(url);
    REQUIRE(pg_migrate(*conn, "archive", postgres_archive::migrations()));
  }
  postgres_archive::PgKeys keys;
  bool append(const ArchiveKey& key, const ArchiveEntry& e) {
    const bool ok = postgres_archive::append(*conn, keys, key, e).has_value();
    keys.end_transaction(ok);  // no transaction open: the statements committed by themselves
    return ok;
  }
  QueryResult query(const ArchiveQuery& q) {
    auto r = postgres_archive::query(*conn, q);
    if (r) return std::move(*r);
    return parley::unexpected(ArchiveError{
        r.error().sqlstate == postgres_archive::kNotFound ? "item-not-found" : "internal-server-error",
        r.error().message});
  }
  parley::Result<uint64_t, ArchiveError> remove(const ArchiveKey& key, int64_t before) {
    auto r = postgres_archive::remove(*conn, key, before);
    if (r) return *r;
    return parley::unexpected(ArchiveError{"internal-server-error", r.error().message});
  }
  std::unique_ptr<PostgresArchiveStore> store(size_t max_queue) {
    return std::make_unique<PostgresArchiveStore>(url, max_queue);
  }
};

// Entries 1..n of alice, ids and timestamps 10, 20, ... (the store never gives an id
// below its timestamp); every third with carol.
template <class B>
void fill(B& b, int n) {
  for (int i = 1; i <= n; ++i) {
    ArchiveEntry e{static_cast<uint64_t>(i * 10), i * 10,
                   i % 3 == 0 ? "carol@example.org/phone" : "bob@example.org/laptop", "m" + std::to_string(i)};
    REQUIRE(b.append(alice, e));
  }
}

inline std::vector<uint64_t> ids_of(const ArchivePage& page) {
  std::vector<uint64_t> out;
  for (const auto& e : page.entries) out.push_back(e.id);
  return out;
}

inline ArchiveQuery of_alice(uint32_t max) {
  ArchiveQuery q;
  q.key = alice;
  q.max = max;
  return q;
}


inline constexpr size_t kFloodBatch = std::max(SqliteArchiveStore::kMaxBatch, PostgresArchiveStore::kMaxBatch);

// Group commit: far more appends in flight than one batch (kMaxBatch) all land, each with
// the id append() gave it and its own bytes, their completions in queue order; a query
// queued behind them sees them all.
template <class Store>
void flood(Store& store, int n, const std::function<void()>& midway = {}) {
  static_assert(Store::kMaxBatch > 0);
  std::vector<uint64_t> ids;
  std::vector<uint64_t> completed;  // ids in completion order (one store thread)
  std::mutex m;
  std::promise<void> all;
  std::atomic<int> left{n};
  std::atomic<int> failed{0};
  for (int i = 0; i < n; ++i) {
    const uint64_t id = store.append(i % 3 ? alice : bob,
                                     ArchiveEntry{0, 1000, "carol@example.org/r" + std::to_string(i % 7),
                                                  "<message>" + std::to_string(i) + std::string(i % 50, '\xe9') + "</message>"},
                                     [&, i](parley::Result<void, ArchiveError> r) {
                                       if (!r) ++failed;
                                       {
                                         std::lock_guard lock(m);
                                         completed.push_back(static_cast<uint64_t>(i));
                                       }
                                       if (--left == 0) all.set_value();
                                     });
    REQUIRE(id != 0);
    {
      std::lock_guard lock(m);
      ids.push_back(id);
    }
    if (i == n / 2 && midway) midway();
  }
  all.get_future().get();
  CHECK(failed == 0);
  {
    std::lock_guard lock(m);
    REQUIRE(completed.size() == static_cast<size_t>(n));
    // In queue order.
    for (size_t k = 1; k < completed.size(); ++k) CHECK(completed[k] == k);
  }
  for (size_t k = 1; k < ids.size(); ++k) REQUIRE(ids[k] == ids[k - 1] + 1);
  std::promise<QueryResult> page;
  ArchiveQuery q = of_alice(static_cast<uint32_t>(n));
  store.query(q, [&page](QueryResult r) { page.set_value(std::move(r)); });
  auto r = page.get_future().get();
  REQUIRE(r);
  std::vector<uint64_t> alices;
  for (int i = 0; i < n; ++i)
    if (i % 3) alices.push_back(ids[static_cast<size_t>(i)]);
  CHECK(r->total == alices.size());  // each once: none lost, none twice
  REQUIRE(ids_of(*r) == alices);
  for (const auto& e : r->entries) {
    const int i = static_cast<int>(e.id - ids[0]);
    CHECK(e.payload == "<message>" + std::to_string(i) + std::string(i % 50, '\xe9') + "</message>");
    CHECK(e.with == "carol@example.org/r" + std::to_string(i % 7));
  }
}

}  // namespace parley::test::archive
