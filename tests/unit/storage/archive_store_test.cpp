// The archive store on SQLite: appends, the result set's filters, RSM pages from both
// ends, unknown ids, removal by owner and by age; and the threaded store's order.
#include <doctest/doctest.h>

#include <future>
#include <string>
#include <vector>

#include "open_db.hpp"
#include "storage/sqlite_archive_store.hpp"
#include "temp_dir.hpp"

using namespace parley::storage;

namespace {

const ArchiveKey alice{"mod_mam/example.org", "alice@example.org"};
const ArchiveKey bob{"mod_mam/example.org", "bob@example.org"};

std::unique_ptr<Database> archive_db(const parley::test::TempDir& dir) {
  auto db = parley::test::open_rw(dir.file("archive.db"));
  REQUIRE(db->migrate("archive", sqlite_archive::migrations()));
  return db;
}

// Entries 1..n of alice, ids and timestamps 10, 20, ... (the store never gives an id
// below its timestamp); every third with carol.
void fill(Database& db, int n) {
  for (int i = 1; i <= n; ++i) {
    ArchiveEntry e{static_cast<uint64_t>(i * 10), i * 10,
                   i % 3 == 0 ? "carol@example.org/phone" : "bob@example.org/laptop", "m" + std::to_string(i)};
    REQUIRE(sqlite_archive::append(db, alice, e));
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

TEST_CASE("archive: pages forward from the start and after an id") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 7);
  auto page = sqlite_archive::query(*db, of_alice(3));
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
  page = sqlite_archive::query(*db, next);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{70});
  CHECK(page->index == 6);
  CHECK(page->complete);
}

TEST_CASE("archive: pages backward from the end (empty before) and before an id") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 7);
  ArchiveQuery last = of_alice(3);
  last.from_end = true;
  auto page = sqlite_archive::query(*db, last);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{50, 60, 70});  // ascending within the page
  CHECK(page->index == 4);
  CHECK_FALSE(page->complete);
  last.page_before = 30;
  page = sqlite_archive::query(*db, last);
  REQUIRE(page);
  CHECK(ids_of(*page) == std::vector<uint64_t>{10, 20});
  CHECK(page->complete);
}

TEST_CASE("archive: filters by with (bare or full), time, id bounds and id lists") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 7);
  ArchiveQuery q = of_alice(10);
  q.with = "carol@example.org";
  CHECK(ids_of(*sqlite_archive::query(*db, q)) == std::vector<uint64_t>{30, 60});
  q.with = "carol@example.org/phone";
  CHECK(ids_of(*sqlite_archive::query(*db, q)) == std::vector<uint64_t>{30, 60});
  q.with = "carol@example.org/other";
  CHECK(sqlite_archive::query(*db, q)->entries.empty());
  q = of_alice(10);
  q.start_us = 20;
  q.end_us = 40;  // both inclusive
  CHECK(ids_of(*sqlite_archive::query(*db, q)) == std::vector<uint64_t>{20, 30, 40});
  q = of_alice(10);
  q.after_id = 20;
  q.before_id = 50;
  auto page = sqlite_archive::query(*db, q);
  CHECK(ids_of(*page) == std::vector<uint64_t>{30, 40});
  CHECK(page->total == 2);
  q = of_alice(10);
  q.by_ids = true;
  q.ids = {70, 10};
  CHECK(ids_of(*sqlite_archive::query(*db, q)) == std::vector<uint64_t>{10, 70});
  q.ids = {70, 10, 12345};  // one unknown id: item-not-found (XEP-0313 4.1.2)
  CHECK(sqlite_archive::query(*db, q).error().condition == "item-not-found");
  q.ids = {};
  CHECK(sqlite_archive::query(*db, q)->entries.empty());
  // Another owner's archive is another set.
  ArchiveQuery b;
  b.key = bob;
  b.max = 10;
  CHECK(sqlite_archive::query(*db, b)->total == 0);
}

TEST_CASE("archive: an id that is not in the archive is item-not-found") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 3);
  for (uint64_t ArchiveQuery::*field :
       {&ArchiveQuery::after_id, &ArchiveQuery::before_id, &ArchiveQuery::page_after, &ArchiveQuery::page_before}) {
    ArchiveQuery q = of_alice(3);
    q.*field = 15;
    auto r = sqlite_archive::query(*db, q);
    REQUIRE_FALSE(r);
    CHECK(r.error().condition == "item-not-found");
    q.*field = ~uint64_t{0};  // beyond what the store keeps
    r = sqlite_archive::query(*db, q);
    REQUIRE_FALSE(r);
    CHECK(r.error().condition == "item-not-found");
  }
  // Bob's ids are not alice's.
  ArchiveQuery q = of_alice(3);
  q.key = bob;
  q.page_after = 10;
  CHECK(sqlite_archive::query(*db, q).error().condition == "item-not-found");
}

TEST_CASE("archive: max 0 counts; duplicate and zero ids are refused") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 4);
  auto page = sqlite_archive::query(*db, of_alice(0));
  REQUIRE(page);
  CHECK(page->entries.empty());
  CHECK(page->total == 4);
  CHECK_FALSE(sqlite_archive::append(*db, alice, ArchiveEntry{10, 1, "x@y", "dup"}));
  CHECK_FALSE(sqlite_archive::append(*db, alice, ArchiveEntry{0, 1, "x@y", "zero"}));
}

TEST_CASE("archive: removal by owner and by age") {
  parley::test::TempDir dir;
  auto db = archive_db(dir);
  fill(*db, 5);
  REQUIRE(sqlite_archive::append(*db, bob, ArchiveEntry{5, 5, "alice@example.org", "b1"}));
  CHECK_FALSE(sqlite_archive::append(*db, bob, ArchiveEntry{10, 10, "alice@example.org", "b2"}));  // ids are store-wide
  auto removed = sqlite_archive::remove(*db, ArchiveKey{alice.scope, ""}, 25);  // every archive of the scope
  REQUIRE(removed);
  CHECK(*removed == 3);  // alice's 10 and 20, bob's 5
  CHECK(ids_of(*sqlite_archive::query(*db, of_alice(10))) == std::vector<uint64_t>{30, 40, 50});
  removed = sqlite_archive::remove(*db, alice, std::numeric_limits<int64_t>::max());
  CHECK(*removed == 3);
  CHECK(sqlite_archive::query(*db, of_alice(10))->total == 0);
  // Another scope is untouched.
  REQUIRE(sqlite_archive::append(*db, ArchiveKey{"mod_other/example.org", "alice@example.org"},
                                 ArchiveEntry{100, 1, "x@y", "other"}));
  CHECK(*sqlite_archive::remove(*db, ArchiveKey{alice.scope, ""}, std::numeric_limits<int64_t>::max()) == 0);
}

TEST_CASE("archive store: ids increase in queue order; a query sees the appends before it") {
  parley::test::TempDir dir;
  std::vector<uint64_t> ids;
  {
    SqliteArchiveStore store(dir.file("archive.db"), 1000);
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
  SqliteArchiveStore again(dir.file("archive.db"), 10);
  REQUIRE(again.start());
  std::promise<bool> done;
  uint64_t id = again.append(alice, ArchiveEntry{0, 1, "x@y", "after restart"},
                             [&done](parley::Result<void, ArchiveError> r) { done.set_value(r.has_value()); });
  CHECK(id == ids.back() + 1);
  CHECK(done.get_future().get());
}

TEST_CASE("archive store: a full queue refuses") {
  parley::test::TempDir dir;
  SqliteArchiveStore store(dir.file("archive.db"), 2);  // not started: nothing drains the queue
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
