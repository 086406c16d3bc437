// The archive store on both backends (SQLite, PostgreSQL): appends, the result set's
// filters, RSM pages from both ends, unknown ids, removal by owner and by age; and the
// threaded stores' order. Every case runs on each backend.
//
// The PostgreSQL cases need $PARLEY_TEST_PG_URL (a database they may create schemas in):
// ctest runs this binary through tests/integration/parley_harness.py with-postgres, which
// starts a PostgreSQL for it. Without it they fail: CI must never pass without them.
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

using namespace parley::storage;

namespace {

using parley::test::pg_base_url;
using parley::test::pg_connect;
using parley::test::terminate_sessions_of;

const ArchiveKey alice{"mod_mam/example.org", "alice@example.org"};
const ArchiveKey bob{"mod_mam/example.org", "bob@example.org"};

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
struct PgBackend {
  std::string url;
  std::string name;
  std::unique_ptr<PgConnection> conn;

  PgBackend() {
    static std::atomic<int> serial{0};
    const std::string base = pg_base_url();
    name = "archive_test_" + std::to_string(getpid()) + "_" + std::to_string(++serial);
    auto admin = pg_connect(base);
    REQUIRE(admin->exec("DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name));
    url = base + (base.find('?') == std::string::npos ? "?" : "&") + "application_name=" + name +
          "&options=-csearch_path%3D" + name;
    conn = pg_connect(url);
    REQUIRE(pg_migrate(*conn, "archive", postgres_archive::migrations()));
  }
  ~PgBackend() {
    conn.reset();
    if (auto admin = PgConnection::connect(pg_base_url(), std::chrono::seconds(10)))
      (void)(*admin)->exec("DROP SCHEMA IF EXISTS " + name + " CASCADE");
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

std::vector<uint64_t> ids_of(const ArchivePage& page) {
  std::vector<uint64_t> out;
  for (const auto& e : page.entries) out.push_back(e.id);
  return out;
}

ArchiveQuery of_alice(uint32_t max) {
  ArchiveQuery q;
  q.key = alice;
  q.max = max;
  return q;
}

}  // namespace

TEST_CASE_TEMPLATE("archive: pages forward from the start and after an id", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 7);
  auto page = b.query(of_alice(3));
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{10, 20, 30});
  CHECK(page->total == 7);
  CHECK(page->index == 0);
  CHECK_FALSE(page->complete);
  CHECK(page->entries[0].payload == "m1");
  CHECK(page->entries[0].timestamp_us == 10);
  CHECK(page->entries[0].with == "bob@example.org/laptop");

  ArchiveQuery next = of_alice(3);
  next.page_after = 60;
  page = b.query(next);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{70});
  CHECK(page->index == 6);
  CHECK(page->complete);
}

TEST_CASE_TEMPLATE("archive: pages backward from the end (empty before) and before an id", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 7);
  ArchiveQuery last = of_alice(3);
  last.from_end = true;
  auto page = b.query(last);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{50, 60, 70});  // ascending within the page
  CHECK(page->index == 4);
  CHECK_FALSE(page->complete);
  last.page_before = 30;
  page = b.query(last);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{10, 20});
  CHECK(page->complete);
}

TEST_CASE_TEMPLATE("archive: filters by with (bare or full), time, id bounds and id lists", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 7);
  ArchiveQuery q = of_alice(10);
  q.with = "carol@example.org";
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{30, 60});
  q.with = "carol@example.org/phone";
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{30, 60});
  q.with = "carol@example.org/other";
  CHECK(b.query(q)->entries.empty());
  q = of_alice(10);
  q.start_us = 20;
  q.end_us = 40;  // both inclusive
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{20, 30, 40});
  q = of_alice(10);
  q.after_id = 20;
  q.before_id = 50;
  auto page = b.query(q);
  CHECK(ids_of(*page) == std::vector<uint64_t>{30, 40});
  CHECK(page->total == 2);
  q = of_alice(10);
  q.by_ids = true;
  q.ids = {70, 10};
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{10, 70});
  q.ids = {70, 10, 12345};  // one unknown id: item-not-found (XEP-0313 4.1.2)
  CHECK(b.query(q).error().condition == "item-not-found");
  q.ids = {};
  CHECK(b.query(q)->entries.empty());
  // Another owner's archive is another set.
  ArchiveQuery of_bob;
  of_bob.key = bob;
  of_bob.max = 10;
  CHECK(b.query(of_bob)->total == 0);
}

// A start is an id bound too (ids_above: no id is below its entry's timestamp), so the
// page reads from there: what it must still find is an entry stored late with an old
// time (an import), whose id is above every other, and what it must still leave out are
// later ids with times before the start.
TEST_CASE_TEMPLATE("archive: a start bounds the ids, and an entry stored late with an old time is in its place", B,
                   SqliteBackend, SqliteMigratedBackend, PgBackend) {
  B b;
  fill(b, 7);  // ids and times 10..70
  REQUIRE(b.append(alice, ArchiveEntry{80, 25, "bob@example.org/laptop", "imported"}));
  ArchiveQuery q = of_alice(10);
  q.start_us = 25;  // inclusive: the imported entry's own time
  auto page = b.query(q);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{30, 40, 50, 60, 70, 80});
  CHECK(page->total == 6);
  q.start_us = 26;
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{30, 40, 50, 60, 70});
  q.start_us = 30;
  q.after_id = 40;  // the larger bound wins
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{50, 60, 70});
  q.start_us = 60;
  q.after_id = 20;
  page = b.query(q);
  CHECK(ids_of(*page) == std::vector<uint64_t>{60, 70});
  CHECK(page->index == 0);
  q = of_alice(2);
  q.start_us = 40;
  q.from_end = true;  // the last page of the set, and its place in it
  page = b.query(q);
  CHECK(ids_of(*page) == std::vector<uint64_t>{60, 70});
  CHECK(page->total == 4);
  CHECK(page->index == 2);
  // A retention bound is on ids (ABI 1.10 min_id): the late entry, stored after the
  // bound's time, is kept whatever its own time, and an id below needs no existence.
  q = of_alice(10);
  q.min_id = 35;
  page = b.query(q);
  CHECK(ids_of(*page) == std::vector<uint64_t>{40, 50, 60, 70, 80});
  CHECK(page->total == 5);
  q.start_us = 30;  // with a time too: the late entry's time is before it
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{40, 50, 60, 70});
}

// A forward page's index is counted from the nearer end (kIndexTailScan): from the page on
// when that is short, else the entries before it. Both ways must give the same places.
TEST_CASE_TEMPLATE("archive: a page's index is the same counted from either end", B, SqliteBackend,
                   SqliteMigratedBackend, PgBackend) {
  B b;
  fill(b, 1200);  // ids 10 .. 12000
  for (uint64_t after : {uint64_t{0}, uint64_t{1000}, uint64_t{5000}, uint64_t{11500}, uint64_t{11990}}) {
    ArchiveQuery q = of_alice(10);
    q.page_after = after;
    auto page = b.query(q);
    REQUIRE(page);
    CAPTURE(after);
    CHECK(page->total == 1200);
    CHECK(page->index == after / 10);
    CHECK(page->entries.front().id == after + 10);
  }
  ArchiveQuery back = of_alice(10);
  back.from_end = true;
  back.page_before = 3010;  // the 301st entry: 300 before it, the page the ten before those
  auto page = b.query(back);
  REQUIRE(page);
  CHECK(page->index == 290);
  CHECK(ids_of(*page).front() == 2910);
}

TEST_CASE_TEMPLATE("archive: an id that is not in the archive is item-not-found", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 3);
  for (uint64_t ArchiveQuery::*field :
       {&ArchiveQuery::after_id, &ArchiveQuery::before_id, &ArchiveQuery::page_after, &ArchiveQuery::page_before}) {
    ArchiveQuery q = of_alice(3);
    q.*field = 15;
    auto r = b.query(q);
    REQUIRE_FALSE(r);
    CHECK(r.error().condition == "item-not-found");
    q.*field = ~uint64_t{0};  // beyond what the store keeps
    r = b.query(q);
    REQUIRE_FALSE(r);
    CHECK(r.error().condition == "item-not-found");
  }
  // Bob's ids are not alice's.
  ArchiveQuery q = of_alice(3);
  q.key = bob;
  q.page_after = 10;
  CHECK(b.query(q).error().condition == "item-not-found");
}

TEST_CASE_TEMPLATE("archive: max 0 counts; duplicate and zero ids are refused", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 4);
  auto page = b.query(of_alice(0));
  REQUIRE(page);
  CHECK(page->entries.empty());
  CHECK(page->total == 4);
  CHECK_FALSE(b.append(alice, ArchiveEntry{10, 1, "x@y", "dup"}));
  CHECK_FALSE(b.append(alice, ArchiveEntry{0, 1, "x@y", "zero"}));
}

TEST_CASE_TEMPLATE("archive: removal by owner and by age", B, SqliteBackend, SqliteMigratedBackend,
                   PgBackend) {
  B b;
  fill(b, 5);
  REQUIRE(b.append(bob, ArchiveEntry{5, 5, "alice@example.org", "b1"}));
  CHECK_FALSE(b.append(bob, ArchiveEntry{10, 10, "alice@example.org", "b2"}));  // ids are store-wide
  auto removed = b.remove(ArchiveKey{alice.scope, ""}, 25);  // every archive of the scope
  REQUIRE(removed);
  CHECK(*removed == 3);  // alice's 10 and 20, bob's 5
  CHECK(ids_of(*b.query(of_alice(10))) == std::vector<uint64_t>{30, 40, 50});
  removed = b.remove(alice, std::numeric_limits<int64_t>::max());
  CHECK(*removed == 3);
  CHECK(b.query(of_alice(10))->total == 0);
  // Another scope is untouched.
  REQUIRE(b.append(ArchiveKey{"mod_other/example.org", "alice@example.org"},
                                 ArchiveEntry{100, 1, "x@y", "other"}));
  CHECK(*b.remove(ArchiveKey{alice.scope, ""}, std::numeric_limits<int64_t>::max()) == 0);
}

TEST_CASE_TEMPLATE("archive store: appends complete in id order, completed_through at each one's id as it completes",
                   B, SqliteBackend, PgBackend) {
  B b;
  auto store_ptr = b.store(1000);
  auto& store = *store_ptr;
  REQUIRE(store.start());
  CHECK(store.completed_through() == 0);
  constexpr int kAppends = 200;
  std::vector<uint64_t> seen(kAppends, 0);
  std::vector<int> order;
  std::promise<void> all_done;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kAppends; ++i)
    ids.push_back(store.append(i % 2 ? alice : bob, ArchiveEntry{0, 1000 + i, "carol@example.org/r", "p"},
                               [&, i](parley::Result<void, ArchiveError> r) {
                                 CHECK(r.has_value());
                                 seen[i] = store.completed_through();
                                 order.push_back(i);
                                 if (order.size() == kAppends) all_done.set_value();
                               }));
  all_done.get_future().get();
  for (int i = 0; i < kAppends; ++i) {
    CHECK(order[i] == i);
    CHECK(seen[i] == ids[i]);  // set just before, and not yet past it
  }
  CHECK(store.completed_through() == ids.back());
  store.stop();
}

TEST_CASE_TEMPLATE("archive store: ids increase in queue order; a query sees the appends before it", B, SqliteBackend,
                   SqliteMigratedBackend, PgBackend) {
  B b;
  std::vector<uint64_t> ids;
  {
    auto store_ptr = b.store(1000);
    auto& store = *store_ptr;
    REQUIRE(store.start());
    std::vector<std::promise<bool>> appended(50);
    for (int i = 0; i < 50; ++i) {
      // The same timestamp for all: the ids still increase (one more than the last).
      ids.push_back(store.append(i % 2 ? alice : bob, ArchiveEntry{0, 1000, "carol@example.org", "p"},
                                 [&appended, i](parley::Result<void, ArchiveError> r) {
                                   appended[i].set_value(r.has_value());
                                 }));
    }
    for (size_t i = 1; i < ids.size(); ++i) CHECK(ids[i] > ids[i - 1]);
    CHECK(ids[0] >= 1000);
    std::promise<std::vector<uint64_t>> page;
    ArchiveQuery q = of_alice(100);
    store.query(q, [&page](parley::Result<ArchivePage, ArchiveError> r) {
      page.set_value(r ? ids_of(*r) : std::vector<uint64_t>{});
    });
    std::vector<uint64_t> alices;
    for (size_t i = 1; i < ids.size(); i += 2) alices.push_back(ids[i]);
    CHECK(page.get_future().get() == alices);
    for (auto& a : appended) CHECK(a.get_future().get());
    store.stop();
    // After stop, an append is refused at once (0, no completion); a query fails.
    bool ran = false;
    CHECK(store.append(alice, ArchiveEntry{0, 1, "x@y", "late"}, [&ran](auto) { ran = true; }) == 0);
    CHECK_FALSE(ran);
    std::promise<std::string> late;
    store.query(q, [&late](parley::Result<ArchivePage, ArchiveError> r) { late.set_value(r ? "" : r.error().condition); });
    CHECK(late.get_future().get() == "resource-constraint");
  }
  // Reopened, with a clock that went back: ids go on above every id stored.
  auto again_ptr = b.store(10);
  auto& again = *again_ptr;
  REQUIRE(again.start());
  std::promise<bool> done;
  uint64_t id = again.append(alice, ArchiveEntry{0, 1, "x@y", "after restart"},
                             [&done](parley::Result<void, ArchiveError> r) { done.set_value(r.has_value()); });
  CHECK(id == ids.back() + 1);
  CHECK(done.get_future().get());
}

// The whole archive's size is kept by the store's thread (archive_totals.hpp) instead of
// counted per query: it must stay the true size across appends (queued before the query,
// in the same batch or later ones), removals of one owner's entries and expiry, and the
// last page's index must be the size less the page.
TEST_CASE_TEMPLATE("archive store: an archive's kept size follows appends, removals and expiry", B, SqliteBackend,
                   PgBackend) {
  B b;
  auto store_ptr = b.store(1000);
  auto& store = *store_ptr;
  REQUIRE(store.start());
  auto append = [&](const ArchiveKey& key, int64_t ts) {
    return store.append(key, ArchiveEntry{0, ts, "carol@example.org", "p"}, nullptr);
  };
  auto last_page = [&](uint32_t max) {
    std::promise<ArchivePage> page;
    ArchiveQuery q = of_alice(max);
    q.from_end = true;
    store.query(q, [&page](parley::Result<ArchivePage, ArchiveError> r) {
      REQUIRE(r);
      page.set_value(*r);
    });
    return page.get_future().get();
  };
  auto removed = [&](const ArchiveKey& key, int64_t before) {
    std::promise<uint64_t> n;
    store.remove(key, before, [&n](parley::Result<uint64_t, ArchiveError> r) { n.set_value(r ? *r : 9999); });
    return n.get_future().get();
  };
  for (int i = 1; i <= 30; ++i) append(i % 3 ? alice : bob, i * 10);  // 20 of alice's, 10 of bob's
  ArchivePage page = last_page(5);
  CHECK(page.total == 20);
  CHECK(page.index == 15);
  CHECK(page.entries.size() == 5);
  for (int i = 31; i <= 36; ++i) append(alice, i * 10);  // after the size was kept
  page = last_page(5);
  CHECK(page.total == 26);
  CHECK(page.index == 21);
  CHECK(page.entries.back().timestamp_us == 360);
  CHECK(removed(alice, 105) == 7);  // alice's entries before 105 (10 20 40 50 70 80 100)
  page = last_page(100);
  CHECK(page.total == 19);
  CHECK(page.index == 0);
  CHECK(page.entries.size() == 19);
  append(alice, 370);
  // A retention bound (min_id) leaves the set the whole archive, less what it hides.
  std::promise<ArchivePage> kept;
  ArchiveQuery retained = of_alice(2);
  retained.from_end = true;
  retained.min_id = 205;
  store.query(retained, [&kept](parley::Result<ArchivePage, ArchiveError> r) {
    REQUIRE(r);
    kept.set_value(*r);
  });
  ArchivePage within = kept.get_future().get();
  CHECK(within.total == 13);
  CHECK(within.index == 11);
  CHECK(within.entries.back().timestamp_us == 370);
  CHECK(removed(ArchiveKey{alice.scope, ""}, 205) > 0);  // expiry: every owner of the scope
  page = last_page(3);
  CHECK(page.total == 13);  // alice's from 220 (220 230 250 260 280 290 310 .. 370)
  CHECK(page.index == 10);
  store.stop();
}

constexpr size_t kFloodBatch = std::max(SqliteArchiveStore::kMaxBatch, PostgresArchiveStore::kMaxBatch);

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

TEST_CASE_TEMPLATE("archive store: many appends in flight land in order, each with its id and bytes", B, SqliteBackend,
                   PgBackend) {
  B b;
  // Three batches' worth and more, whatever the batch's bound.
  const int n = static_cast<int>(3 * kFloodBatch + 100);
  auto store = b.store(static_cast<size_t>(n));
  REQUIRE(store->start());
  flood(*store, n);
  store->stop();
}

TEST_CASE_TEMPLATE("archive store: a full queue refuses", B, SqliteBackend, PgBackend) {
  B b;
  auto store_ptr = b.store(2);
  auto& store = *store_ptr;  // not started: nothing drains the queue
  std::vector<std::string> outcomes;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(store.append(alice, ArchiveEntry{0, 1, "x@y", "p"}, [&outcomes](parley::Result<void, ArchiveError> r) {
      outcomes.push_back(r ? "ok" : r.error().condition);
    }));
  CHECK(ids[0] != 0);
  CHECK(ids[1] == ids[0] + 1);
  CHECK(ids[2] == 0);  // refused: its completion never runs
  CHECK(outcomes.empty());
  CHECK(store.queue_length() == 2);
  ArchiveQuery q = of_alice(1);
  store.query(q, [&outcomes](parley::Result<ArchivePage, ArchiveError> r) {
    outcomes.push_back(r ? "ok" : r.error().condition);
  });
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0] == "resource-constraint");
  store.stop();  // the two queued fail: the store never started
  CHECK(outcomes.size() == 3);
}

TEST_CASE("archive on SQLite: schema 1's rows move to the integer keys, one id per owner and per bare JID") {
  SqliteMigratedBackend b;
  fill(b, 6);  // alice with bob's laptop and carol's phone
  REQUIRE(b.append(alice, ArchiveEntry{100, 100, "bob@example.org/phone", "other resource"}));
  REQUIRE(b.append(bob, ArchiveEntry{110, 110, "alice@example.org", "bare"}));
  const ArchiveKey other_scope{"mod_other/example.org", "alice@example.org"};
  REQUIRE(b.append(other_scope, ArchiveEntry{120, 120, "bob@example.org/laptop", "other scope"}));
  b.migrate();
  CHECK(*b.db->schema_version("archive") == 2);
  auto scalar = [&](const char* sql) {
    auto st = b.db->prepare(sql);
    REQUIRE(st);
    REQUIRE(*(*st)->step());
    int64_t v = (*st)->column_int64(0);
    (*st)->reset();
    return v;
  };
  CHECK(scalar("SELECT COUNT(*) FROM archive") == 9);
  CHECK(scalar("SELECT COUNT(*) FROM archive_owner") == 3);
  CHECK(scalar("SELECT COUNT(*) FROM archive_jid") == 3);  // bob, carol, alice: bare, whatever the resource
  CHECK(scalar("SELECT COUNT(*) FROM pragma_table_info('archive') WHERE name IN ('scope', 'owner', 'with_bare')") == 0);
  CHECK(scalar("SELECT COUNT(*) FROM pragma_index_info('archive_by_with')") == 3);  // owner_id, with_id, id
  CHECK(scalar("SELECT MAX(id) FROM archive") == 120);
  ArchiveQuery q = of_alice(10);
  q.with = "bob@example.org";
  auto page = b.query(q);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{10, 20, 40, 50, 100});
  CHECK(page->entries.back().with == "bob@example.org/phone");
  CHECK(page->entries.back().payload == "other resource");
  q.with = "bob@example.org/phone";
  CHECK(ids_of(*b.query(q)) == std::vector<uint64_t>{100});
  ArchiveQuery theirs;
  theirs.key = other_scope;
  theirs.max = 10;
  CHECK(ids_of(*b.query(theirs)) == std::vector<uint64_t>{120});
  // An append after the move, to an owner and a JID the move made: the same ids.
  REQUIRE(b.append(bob, ArchiveEntry{130, 130, "alice@example.org/x", "new"}));
  CHECK(scalar("SELECT COUNT(*) FROM archive_owner") == 3);
  CHECK(scalar("SELECT COUNT(*) FROM archive_jid") == 3);
  ArchiveQuery bobs;
  bobs.key = bob;
  bobs.with = "alice@example.org";
  bobs.max = 10;
  CHECK(ids_of(*b.query(bobs)) == std::vector<uint64_t>{110, 130});
}

TEST_CASE("archive on SQLite: an owner's id made in a transaction rolled back is not kept") {
  SqliteBackend b;
  {
    auto tx = b.db->begin();
    REQUIRE(tx);
    REQUIRE(b.append(alice, ArchiveEntry{10, 10, "carol@example.org", "rolled back"}));
  }  // rolled back: alice's row in archive_owner is gone, and its rowid free again
  b.keys.end_transaction(false);
  // Bob is made next, with the rowid alice had in the transaction.
  REQUIRE(b.append(bob, ArchiveEntry{20, 20, "carol@example.org", "bob's"}));
  CHECK(b.query(of_alice(10))->total == 0);  // not bob's archive under alice's name
  REQUIRE(b.append(alice, ArchiveEntry{30, 30, "carol@example.org", "alice's"}));
  auto page = b.query(of_alice(10));
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{30});
  ArchiveQuery of_bob;
  of_bob.key = bob;
  of_bob.max = 10;
  CHECK(ids_of(*b.query(of_bob)) == std::vector<uint64_t>{20});
}

TEST_CASE("archive on PostgreSQL: a retried append of a stored id is a no-op, not a duplicate") {
  PgBackend b;
  ArchiveEntry e{10, 10, "bob@example.org", "once"};
  REQUIRE(postgres_archive::append(*b.conn, b.keys, alice, e));
  // The retry of an append whose commit landed, though its answer was lost.
  CHECK(postgres_archive::append(*b.conn, b.keys, alice, e, /*retry=*/true));
  CHECK_FALSE(postgres_archive::append(*b.conn, b.keys, alice, e));  // not a retry: a duplicate id is an error
  CHECK(b.query(of_alice(10))->total == 1);
}

TEST_CASE("archive store on PostgreSQL: a lost connection is reconnected; the appends queued meanwhile are stored") {
  PgBackend b;
  auto store = b.store(100);
  std::vector<std::string> log;
  std::mutex log_mutex;
  store->set_log([&](std::string_view m) {
    std::lock_guard lock(log_mutex);
    log.emplace_back(m);
  });
  REQUIRE(store->start());
  auto append = [&](std::string payload) {
    auto done = std::make_shared<std::promise<bool>>();
    uint64_t id = store->append(alice, ArchiveEntry{0, 1, "bob@example.org", std::move(payload)},
                                [done](parley::Result<void, ArchiveError> r) { done->set_value(r.has_value()); });
    REQUIRE(id != 0);
    return done->get_future();
  };
  CHECK(append("before").get());
  // The server ends the store's session (as a restart of PostgreSQL would): the only one
  // under this application_name once the test's own connection is closed.
  b.conn.reset();
  REQUIRE(terminate_sessions_of(b.name, 1) == 1);
  std::vector<std::future<bool>> after;
  for (int i = 0; i < 20; ++i) after.push_back(append("after " + std::to_string(i)));
  for (auto& f : after) CHECK(f.get());
  std::promise<QueryResult> page;
  store->query(of_alice(100), [&page](QueryResult r) { page.set_value(std::move(r)); });
  auto r = page.get_future().get();
  REQUIRE(r);
  CHECK(r->total == 21);  // each once: none lost, none twice
  store->stop();
  std::lock_guard lock(log_mutex);
  CHECK(std::find(log.begin(), log.end(), "archive database reconnected") != log.end());
}

TEST_CASE("archive store on PostgreSQL: the connection cut under a flood of appends loses none and stores none twice") {
  PgBackend b;
  const int n = static_cast<int>(3 * kFloodBatch + 100);
  auto store = b.store(static_cast<size_t>(n));
  REQUIRE(store->start());
  b.conn.reset();
  // Cut halfway through queueing (the store is then busy with batches): whatever batch
  // it was in is retried, its appends as no-ops where the cut commit had landed.
  flood(*store, n, [&b] { CHECK(terminate_sessions_of(b.name, 1) == 1); });
  store->stop();
}

TEST_CASE("archive on PostgreSQL: an archive of schema 1 moves to integer keys and keeps its rows and ids") {
  PgBackend b;  // migrated to the last step: start again from step 1 in a schema of its own
  const std::string schema = b.name + "_v1";
  auto admin = pg_connect(pg_base_url());
  REQUIRE(admin->exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema));
  const std::string url = pg_base_url() + (pg_base_url().find('?') == std::string::npos ? "?" : "&") +
                          "options=-csearch_path%3D" + schema;
  {
    auto conn = pg_connect(url);
    REQUIRE(pg_migrate(*conn, "archive", postgres_archive::migrations().first(1)));
    // Rows as schema 1 wrote them: two owners of one scope, one of another scope, and the
    // same correspondent bare and with resources.
    REQUIRE(conn->exec(
        "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) VALUES "
        "('mod_mam/example.org', 'alice@example.org', 10, 10, 'bob@example.org', 'bob@example.org/x', 'kept'),"
        "('mod_mam/example.org', 'alice@example.org', 20, 20, 'carol@example.org', 'carol@example.org', 'c'),"
        "('mod_mam/example.org', 'bob@example.org', 30, 30, 'alice@example.org', 'alice@example.org/y', 'b'),"
        "('mod_mam/example.org', 'alice@example.org', 40, 40, 'bob@example.org', 'bob@example.org/z', 'z'),"
        "('mod_other/example.org', 'alice@example.org', 50, 50, 'bob@example.org', 'bob@example.org', 'o')"));
    REQUIRE(pg_migrate(*conn, "archive", postgres_archive::migrations()));
    auto scalar = [&conn](const std::string& sql) {
      auto rows = conn->run(sql, {});
      REQUIRE(rows);
      return rows->int64(0, 0);
    };
    CHECK(scalar("SELECT COUNT(*) FROM archive") == 5);
    CHECK(scalar("SELECT COUNT(*) FROM archive_owner") == 3);
    CHECK(scalar("SELECT COUNT(*) FROM archive_jid") == 3);  // bob, carol, alice: bare
    CHECK(scalar("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND "
                 "table_name = 'archive' AND data_type = 'text' AND collation_name = 'C'") == 1);  // with_full
    ArchiveQuery q = of_alice(10);
    CHECK(ids_of(*postgres_archive::query(*conn, q)) == std::vector<uint64_t>{10, 20, 40});
    q.with = "bob@example.org";
    auto page = postgres_archive::query(*conn, q);
    REQUIRE(page);
    CHECK(ids_of(*page) == std::vector<uint64_t>{10, 40});
    CHECK(page->entries[0].payload == "kept");
    CHECK(page->entries[0].with == "bob@example.org/x");
    q.with = "bob@example.org/z";
    CHECK(ids_of(*postgres_archive::query(*conn, q)) == std::vector<uint64_t>{40});
    // Appends after the move find the owners and correspondents the move made (no second
    // row for them) and land in the same archives.
    postgres_archive::PgKeys keys;
    REQUIRE(postgres_archive::append(*conn, keys, alice, ArchiveEntry{60, 60, "bob@example.org/x", "new"}));
    REQUIRE(postgres_archive::append(*conn, keys, ArchiveKey{alice.scope, "dave@example.org"},
                                     ArchiveEntry{70, 70, "erin@example.org", "d"}));
    CHECK(scalar("SELECT COUNT(*) FROM archive_owner") == 4);
    CHECK(scalar("SELECT COUNT(*) FROM archive_jid") == 4);
    q.with = "bob@example.org";
    CHECK(ids_of(*postgres_archive::query(*conn, q)) == std::vector<uint64_t>{10, 40, 60});
    // Removal by owner and by age still finds the moved rows.
    CHECK(*postgres_archive::remove(*conn, ArchiveKey{alice.scope, "bob@example.org"}, 1000) == 1);
    CHECK(*postgres_archive::remove(*conn, ArchiveKey{alice.scope, ""}, 25) == 2);  // 10 and 20, not 50 (mod_other)
    CHECK(scalar("SELECT COUNT(*) FROM archive") == 4);
  }
  CHECK(admin->exec("DROP SCHEMA " + schema + " CASCADE"));
}

TEST_CASE("archive store on PostgreSQL: an unreachable database fails start() with a reason") {
  // A port nothing listens on (the discard port, on loopback; connection refused).
  PostgresArchiveStore store("postgresql://parley@127.0.0.1:9/none?connect_timeout=5", 10);
  auto started = store.start();
  REQUIRE_FALSE(started);
  CHECK(started.error().message.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("PackedAppend: the four strings come back as given from one buffer, empty ones too") {
  const std::string payload("<message>\0binary\xff</message>", 27);
  PackedAppend p(ArchiveAppend{"mod_mam/example.org", "alice@example.org", "bob@example.org/phone", payload, 42});
  CHECK(p.scope() == "mod_mam/example.org");
  CHECK(p.owner() == "alice@example.org");
  CHECK(p.with() == "bob@example.org/phone");
  CHECK(p.payload() == payload);
  CHECK(p.timestamp_us == 42);
  CHECK(p.id == 0);
  CHECK(p.key().owner == "alice@example.org");
  PackedAppend empty(ArchiveAppend{"", "a@b", "", "", 1});
  CHECK(empty.scope().empty());
  CHECK(empty.owner() == "a@b");
  CHECK(empty.with().empty());
  CHECK(empty.payload().empty());
  PackedAppend moved = std::move(p);
  CHECK(moved.payload() == payload);
  CHECK(moved.with() == "bob@example.org/phone");
}

// An entry as a store queues it (the strings in one buffer, the id given).
PackedAppend packed(const ArchiveKey& key, const ArchiveEntry& e) {
  PackedAppend p(ArchiveAppend{key.scope, key.owner, e.with, e.payload, e.timestamp_us});
  p.id = e.id;
  return p;
}

TEST_CASE("archive on PostgreSQL: appends in one statement keep every byte, and a duplicate fails them all") {
  PgBackend b;
  const std::string payload = std::string("<m>\"quoted\" \\back\\slash {braces}, comma\0nul\xff</m>", 44);
  const ArchiveKey odd{"mod_mam/ex\"am,ple", "a\\lice@example.org"};
  ArchiveEntry e1{10, 10, "bob@example.org/\"res\\ource\", {x}", payload};
  ArchiveEntry e2{20, 20, "carol@example.org", ""};
  const PackedAppend p1 = packed(odd, e1), p2 = packed(alice, e2);
  const PackedAppend* entries[] = {&p1, &p2};
  REQUIRE(postgres_archive::append_many(*b.conn, b.keys, entries));
  ArchiveQuery q;
  q.key = odd;
  q.max = 10;
  auto page = b.query(q);
  REQUIRE(page);
  REQUIRE(page->entries.size() == 1);
  CHECK(page->entries[0].payload == payload);
  CHECK(page->entries[0].with == e1.with);
  q.with = "bob@example.org";  // the bare part was stored as such
  CHECK(b.query(q)->total == 1);
  auto mine = b.query(of_alice(10));
  REQUIRE(mine);
  REQUIRE(mine->entries.size() == 1);
  CHECK(mine->entries[0].payload.empty());
  // One id already stored: the statement fails as a whole (the store then retries the
  // appends one by one), unless it is a retry.
  const PackedAppend p3 = packed(alice, ArchiveEntry{30, 30, "x@y", "new"});
  const PackedAppend* again[] = {&p3, &p2};
  CHECK_FALSE(postgres_archive::append_many(*b.conn, b.keys, again));
  CHECK(b.query(of_alice(10))->total == 1);
  CHECK(postgres_archive::append_many(*b.conn, b.keys, again, /*retry=*/true));
  CHECK(b.query(of_alice(10))->total == 2);
}
