#include "storage/storage_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

using namespace std::chrono_literals;
using parley::storage::Database;
using parley::storage::StoragePool;
using parley::test::TempDir;

namespace {

// Counts finished jobs; wait_for(n) returns once n are done, or fails the test after 30 s.
class Completion {
 public:
  void done() {
    std::lock_guard lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 30s, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

// Messages the pool reports, kept for the test to look at.
struct Reports {
  std::mutex mutex;
  std::vector<std::string> messages;
  StoragePool::ErrorHandler handler() {
    return [this](std::string_view m) {
      std::lock_guard lock(mutex);
      messages.emplace_back(m);
    };
  }
  size_t size() {
    std::lock_guard lock(mutex);
    return messages.size();
  }
  std::string at(size_t i) {
    std::lock_guard lock(mutex);
    return messages.at(i);
  }
};

// Runs on pool threads: no REQUIRE there (its exception would be caught by the pool and
// the test would wait forever); -1 says it failed.
int64_t count_rows(Database& db) {
  auto st = db.prepare("SELECT count(*) FROM items");
  if (!st) return -1;
  auto row = (*st)->step();
  if (!row || !*row) return -1;
  int64_t n = (*st)->column_int64(0);
  (*st)->reset();
  return n;
}

void create_items(StoragePool& pool) {
  std::promise<bool> created;
  pool.write([&](Database& db) { created.set_value(db.exec("CREATE TABLE items (x INTEGER)").has_value()); });
  REQUIRE(created.get_future().get());
}

}  // namespace

TEST_CASE("start runs the built-in migrations before it returns") {
  TempDir dir;
  StoragePool pool(dir.file("p.db"), 2);
  REQUIRE(pool.start().has_value());
  std::promise<int64_t> version;
  std::atomic<bool> read_only{false};
  pool.read([&](Database& db) {
    read_only = db.mode() == Database::Mode::read_only;
    auto v = db.schema_version("users");
    version.set_value(v ? *v : -1);
  });
  CHECK(version.get_future().get() >= 1);
  CHECK(read_only.load());
  CHECK_FALSE(pool.start().has_value());  // only once
}

TEST_CASE("start fails where the database cannot be opened") {
  TempDir dir;
  StoragePool pool(dir.file("no/such/dir/p.db"), 1);
  auto r = pool.start();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("p.db") != std::string::npos);
  pool.stop();
}

TEST_CASE("many concurrent reads and writes all complete") {
  TempDir dir;
  StoragePool pool(dir.file("p.db"), 3);
  REQUIRE(pool.start().has_value());
  create_items(pool);

  constexpr int kThreads = 4, kPerThread = 150;
  Completion writes, reads;
  std::atomic<int> failures{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        pool.write([&, v = t * kPerThread + i](Database& db) {
          auto st = db.prepare("INSERT INTO items VALUES (?1)");
          if (!st || !(*st)->bind(1, int64_t{v}) || !(*st)->run()) failures++;
          writes.done();
        });
        pool.read([&](Database& db) {
          auto st = db.prepare("SELECT count(*) FROM items");
          if (!st || !(*st)->step()) failures++;
          reads.done();
        });
      }
    });
  }
  for (auto& s : submitters) s.join();
  REQUIRE(writes.wait_for(kThreads * kPerThread));
  REQUIRE(reads.wait_for(kThreads * kPerThread));
  CHECK(failures.load() == 0);

  std::promise<int64_t> rows;
  pool.read([&](Database& db) { rows.set_value(count_rows(db)); });
  CHECK(rows.get_future().get() == kThreads * kPerThread);
}

TEST_CASE("queue lengths count waiting jobs, per queue") {
  TempDir dir;
  StoragePool pool(dir.file("p.db"), 1);
  REQUIRE(pool.start().has_value());
  CHECK(pool.read_queue_length() == 0);
  CHECK(pool.write_queue_length() == 0);

  std::promise<void> release_writer, release_reader;
  std::promise<void> writer_busy, reader_busy;
  auto wr = release_writer.get_future().share();
  auto rr = release_reader.get_future().share();
  pool.write([&, wr](Database&) { writer_busy.set_value(); wr.wait(); });
  pool.read([&, rr](Database&) { reader_busy.set_value(); rr.wait(); });
  writer_busy.get_future().wait();
  reader_busy.get_future().wait();

  Completion done;
  for (int i = 0; i < 5; ++i) pool.write([&](Database&) { done.done(); });
  for (int i = 0; i < 3; ++i) pool.read([&](Database&) { done.done(); });
  CHECK(pool.write_queue_length() == 5);
  CHECK(pool.read_queue_length() == 3);

  // A blocked writer does not hold reads up (separate queues), and the reverse.
  release_reader.set_value();
  REQUIRE(done.wait_for(3));
  CHECK(pool.read_queue_length() == 0);
  CHECK(pool.write_queue_length() == 5);

  release_writer.set_value();
  REQUIRE(done.wait_for(8));
  CHECK(pool.write_queue_length() == 0);
}

TEST_CASE("stop runs every queued job, then joins; it is idempotent") {
  TempDir dir;
  Reports reports;
  StoragePool pool(dir.file("p.db"), 2);
  pool.set_error_handler(reports.handler());
  REQUIRE(pool.start().has_value());
  std::atomic<int> ran{0};
  pool.write([&](Database&) {
    std::this_thread::sleep_for(50ms);  // the rest pile up behind it
    ran++;
  });
  for (int i = 0; i < 99; ++i) pool.write([&](Database&) { ran++; });
  for (int i = 0; i < 100; ++i) pool.read([&](Database&) { ran++; });
  pool.stop();
  CHECK(ran.load() == 200);
  CHECK(pool.write_queue_length() == 0);
  CHECK(pool.read_queue_length() == 0);
  pool.stop();

  SUBCASE("a job after stop is dropped and reported") {
    pool.write([&](Database&) { ran++; });
    pool.read([&](Database&) { ran++; });
    CHECK(ran.load() == 200);
    REQUIRE(reports.size() == 2);
    CHECK(reports.at(0).find("dropped") != std::string::npos);
  }
  SUBCASE("a stopped pool does not start again") { CHECK_FALSE(pool.start().has_value()); }
}

TEST_CASE("jobs queued before start run once it succeeds") {
  TempDir dir;
  StoragePool pool(dir.file("p.db"), 1);
  std::promise<void> ran;
  pool.read([&](Database&) { ran.set_value(); });
  CHECK(pool.read_queue_length() == 1);
  REQUIRE(pool.start().has_value());
  CHECK(ran.get_future().wait_for(30s) == std::future_status::ready);
}

TEST_CASE("a throwing job is reported and the thread carries on") {
  TempDir dir;
  Reports reports;
  StoragePool pool(dir.file("p.db"), 1);  // one reader: the same thread must survive
  pool.set_error_handler(reports.handler());
  REQUIRE(pool.start().has_value());

  pool.write([](Database&) { throw std::runtime_error("disk on fire"); });
  pool.read([](Database&) { throw 42; });
  std::promise<void> wrote, read;
  pool.write([&](Database&) { wrote.set_value(); });
  pool.read([&](Database&) { read.set_value(); });
  CHECK(wrote.get_future().wait_for(30s) == std::future_status::ready);
  CHECK(read.get_future().wait_for(30s) == std::future_status::ready);
  REQUIRE(reports.size() == 2);
  bool saw_message = reports.at(0).find("disk on fire") != std::string::npos ||
                     reports.at(1).find("disk on fire") != std::string::npos;
  CHECK(saw_message);
}

TEST_CASE("a job that leaves a transaction open is rolled back, not leaked") {
  TempDir dir;
  Reports reports;
  StoragePool pool(dir.file("p.db"), 1);
  pool.set_error_handler(reports.handler());
  REQUIRE(pool.start().has_value());
  create_items(pool);
  pool.write([](Database& db) { (void)db.exec("BEGIN; INSERT INTO items VALUES (1)"); });
  std::promise<std::pair<bool, int64_t>> after;
  pool.write([&](Database& db) { after.set_value({db.in_transaction(), count_rows(db)}); });
  auto [open, rows] = after.get_future().get();
  CHECK_FALSE(open);
  CHECK(rows == 0);
  CHECK(reports.size() == 1);
}

TEST_CASE("a read sees a committed write (WAL), even after an earlier read") {
  TempDir dir;
  StoragePool pool(dir.file("p.db"), 1);
  REQUIRE(pool.start().has_value());
  create_items(pool);

  // A read that leaves its statement mid-way: the pool must not let it pin a snapshot.
  std::promise<int64_t> before;
  pool.read([&](Database& db) {
    auto st = db.prepare("SELECT x FROM items UNION ALL SELECT 0");
    auto row = st ? (*st)->step() : parley::Result<bool, parley::storage::Error>(false);
    before.set_value(row && *row ? (*st)->column_int64(0) : -1);
  });
  CHECK(before.get_future().get() == 0);

  std::promise<bool> committed;
  pool.write([&](Database& db) {
    auto st = db.prepare("INSERT INTO items VALUES (7)");
    committed.set_value(st && (*st)->run());
  });
  REQUIRE(committed.get_future().get());

  std::promise<int64_t> seen;
  pool.read([&](Database& db) { seen.set_value(count_rows(db)); });
  CHECK(seen.get_future().get() == 1);
}
