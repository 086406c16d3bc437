// What one archive backend does of its own: SQLite's and PostgreSQL's schema migrations,
// SQLite's key cache across a rollback, PostgreSQL's retries, lost connections and
// one-statement appends; and the queued form of an append (PackedAppend). The cases every
// backend runs are in archive_store_test.cpp.
//
// The PostgreSQL cases need $PARLEY_TEST_PG_URL, as archive_store_test.cpp's.
#include "archive_test_backends.hpp"

using namespace parley::storage;
using namespace parley::test::archive;

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
  parley::test::LogLines log;
  auto store = b.store(100);
  store->set_log(log.sink());
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
  CHECK(log.contains("archive database reconnected"));
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
  parley::test::PgSchema v1("archive_v1_test");  // from step 1, not PgBackend's last step
  {
    auto conn = pg_connect(v1.url);
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
  CHECK(pg_connect(pg_base_url())->exec("DROP SCHEMA " + v1.name + " CASCADE"));
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

TEST_CASE("PackedAppend: built in a given buffer, its memory is reused; take_bytes gives it back") {
  std::string buffer(500, 'x');
  const char* memory = buffer.data();
  PackedAppend p(ArchiveAppend{"mod_mam/example.org", "alice@example.org", "bob@example.org", "<message/>", 7},
                 std::move(buffer));
  CHECK(p.scope() == "mod_mam/example.org");
  CHECK(p.owner() == "alice@example.org");
  CHECK(p.with() == "bob@example.org");
  CHECK(p.payload() == "<message/>");
  CHECK(p.timestamp_us == 7);
  std::string back = p.take_bytes();
  CHECK(back.data() == memory);
  CHECK(p.owner().empty());
  CHECK(p.payload().empty());
  // Too small for the entry: it grows.
  PackedAppend q(ArchiveAppend{"s", "o@h", "w@h", std::string(600, 'p'), 8}, std::string("tiny"));
  CHECK(q.payload() == std::string(600, 'p'));
  CHECK(q.owner() == "o@h");
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
