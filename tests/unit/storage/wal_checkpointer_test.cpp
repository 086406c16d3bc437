// WalCheckpointer: the writer's commits signal, a thread of its own checkpoints; a WAL
// outrunning it is restarted by the writer; stop() gives the writer its own checkpoints
// back.
#include "storage/wal_checkpointer.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "open_db.hpp"
#include "temp_dir.hpp"

using parley::storage::Database;
using parley::storage::WalCheckpointer;
using parley::test::open_rw;
using parley::test::TempDir;

namespace {

// One commit of `rows` rows of 1 KiB: a page or so each, in the WAL.
void commit_rows(Database& db, int rows) {
  auto txn = db.begin();
  REQUIRE(txn.has_value());
  for (int i = 0; i < rows; ++i) REQUIRE(db.exec("INSERT INTO t (v) VALUES (randomblob(1024))").has_value());
  REQUIRE(txn->commit().has_value());
}

int64_t table_rows(Database& db) {
  auto st = db.prepare("SELECT count(*) FROM t");
  REQUIRE(st.has_value());
  auto row = (*st)->step();
  REQUIRE((row.has_value() && *row));
  const int64_t n = (*st)->column_int64(0);
  (*st)->reset();
  return n;
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// A database file with a table of blobs, and its writing connection.
struct WriterDb {
  TempDir dir;
  std::string path = dir.file("a.db");
  std::unique_ptr<Database> writer = open_rw(path);
  WriterDb() { REQUIRE(writer->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)").has_value()); }
};

template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

TEST_CASE("wal checkpointer: the writer's commits are copied into the database by the checkpointer's thread") {
  WriterDb db;
  const uint64_t before = file_size(db.path);
  WalCheckpointer checkpointer(db.path, 20);
  REQUIRE(checkpointer.start(*db.writer).has_value());
  for (int i = 0; i < 10; ++i) commit_rows(*db.writer, 10);  // ~100 pages: past 20 several times
  // The database file grows only by checkpoints, and the writer ran none (its hook only
  // signals): the thread did.
  CHECK(eventually([&] { return checkpointer.checkpoints() > 0 && file_size(db.path) > before + 50 * 1024; }));
  CHECK(checkpointer.restarts() == 0);
  checkpointer.stop();
  CHECK(table_rows(*db.writer) == 100);
}

TEST_CASE("wal checkpointer: a WAL past the restart bound is checkpointed and started over by the writer") {
  WriterDb db;
  // The thread is never asked (its bound is out of reach): only the writer's restart
  // keeps the WAL short.
  WalCheckpointer checkpointer(db.path, 1000000, 40);
  REQUIRE(checkpointer.start(*db.writer).has_value());
  for (int i = 0; i < 20; ++i) commit_rows(*db.writer, 40);  // ~14 pages a commit
  CHECK(checkpointer.restarts() > 0);
  CHECK(checkpointer.checkpoints() == 0);
  // Restarted: the next commits write from the WAL's start, so it stays near the bound
  // (frames of 4 KiB and a header; without the restarts it would hold all 800 rows,
  // some 270 pages).
  CHECK(file_size(db.path + "-wal") < 100 * 4200);
  CHECK(table_rows(*db.writer) == 800);
  checkpointer.stop();
}

TEST_CASE("wal checkpointer: stop is idempotent and gives the writer SQLite's own checkpoints back") {
  WriterDb db;
  WalCheckpointer checkpointer(db.path, 1000000, 1000000);
  REQUIRE(checkpointer.start(*db.writer).has_value());
  checkpointer.stop();
  checkpointer.stop();
  // SQLite's automatic checkpoint again (1,000 pages): 6,000 rows of 1 KiB (three to a
  // page) pass it, and the writer's own commit copies them into the file.
  const uint64_t before = file_size(db.path);
  for (int i = 0; i < 15; ++i) commit_rows(*db.writer, 400);
  CHECK(file_size(db.path) > before + 1000 * 1024);
  CHECK(checkpointer.checkpoints() == 0);
}
