// The archive store on both backends (SQLite, PostgreSQL): appends, the result set's
// filters, RSM pages from both ends, unknown ids, removal by owner and by age; and the
// threaded stores' order. Every case runs on each backend.
//
// The PostgreSQL cases need $PARLEY_TEST_PG_URL (a database they may create schemas in):
// ctest runs this binary through tests/integration/parley_harness.py with-postgres, which
// starts a PostgreSQL for it. Without it they fail: CI must never pass without them.
#include "archive_test_backends.hpp"

using namespace parley::storage;
using namespace parley::test::archive;


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
