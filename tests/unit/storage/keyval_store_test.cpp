// The keyval store on both backends (SQLite, PostgreSQL): get / put / remove /
// remove-all-of-user, scopes and users kept apart, a put of several items all or nothing,
// the per-user quota, put-if-absent (the modules' data moves); and the threaded stores:
// queue order (a get after a put sees it), a full queue, stop, and on PostgreSQL a lost
// connection (nothing reported stored that is not; what was queued is stored once back).
//
// The PostgreSQL cases need $PARLEY_TEST_PG_URL (see archive_store_test.cpp): ctest runs
// this binary through tests/integration/parley_harness.py with-postgres. Without it they
// fail: CI must never pass without them.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "open_db.hpp"
#include "pg_test_support.hpp"
#include "storage/postgres_keyval_store.hpp"
#include "storage/sqlite_keyval_store.hpp"
#include "temp_dir.hpp"

using namespace parley::storage;

namespace {

using parley::test::pg_base_url;
using parley::test::pg_connect;

const KeyvalOwner kv_alice{"mod_vcard/example.org", "alice"};
const KeyvalOwner kv_bob{"mod_vcard/example.org", "bob"};
const KeyvalOwner kv_alice_elsewhere{"mod_private/example.org", "alice"};

using GetResult = parley::Result<std::optional<std::string>, KeyvalError>;
using ManyResult = parley::Result<std::vector<KeyvalItem>, KeyvalError>;

// A fresh keyval table on SQLite: the free functions on a migrated file, and stores.
struct SqliteKv {
  parley::test::TempDir dir;
  std::unique_ptr<Database> db;

  SqliteKv() {
    db = parley::test::open_rw(dir.file("keyval.db"));
    REQUIRE(db->migrate("keyval", sqlite_keyval::migrations()));
  }
  GetResult get(const KeyvalOwner& o, const std::string& key) { return sqlite_keyval::get(*db, o, key); }
  parley::Result<void, KeyvalError> put(const KeyvalOwner& o, std::vector<KeyvalItem> items, uint64_t max = 0,
                                        KeyvalPut mode = KeyvalPut::replace) {
    return sqlite_keyval::put(*db, o, items, max, mode);
  }
  ManyResult get_many(const std::string& scope, const std::vector<std::string>& users, const std::string& key) {
    return sqlite_keyval::get_many(*db, scope, users, key);
  }
  uint64_t remove(const KeyvalOwner& o, const std::string& key) { return sqlite_keyval::remove(*db, o, key).value(); }
  uint64_t remove_user(const KeyvalOwner& o) { return sqlite_keyval::remove_user(*db, o).value(); }
  parley::Result<MapSnapshot, KeyvalError> map_get(const MapOwner& o) { return sqlite_map::get(*db, o); }
  parley::Result<MapChange, KeyvalError> map_put(const MapOwner& o, std::vector<MapItem> items, uint64_t max = 0) {
    return sqlite_map::put(*db, o, items, max);
  }
  parley::Result<MapChange, KeyvalError> map_remove(const MapOwner& o, std::vector<std::string> keys) {
    return sqlite_map::remove(*db, o, keys);
  }
  parley::Result<MapChange, KeyvalError> map_clear(const MapOwner& o) { return sqlite_map::clear(*db, o); }
  std::unique_ptr<SqliteKeyvalStore> store(size_t max_queue) {
    return std::make_unique<SqliteKeyvalStore>(dir.file("store.db"), max_queue);
  }
};

// A fresh keyval table on PostgreSQL: a schema of its own (the stores' URL sets the
// search_path), so no case sees another's rows.
struct PgKv : parley::test::PgSchema {
  std::unique_ptr<PgConnection> conn;

  PgKv() : PgSchema("keyval_test") {
    conn = pg_connect(url);
    REQUIRE(pg_migrate(*conn, "keyval", postgres_keyval::migrations()));
  }
  static KeyvalError of(const PgError& e) {
    return KeyvalError{e.sqlstate == postgres_keyval::kOverQuota ? "policy-violation" : "internal-server-error",
                       e.message};
  }
  GetResult get(const KeyvalOwner& o, const std::string& key) {
    auto r = postgres_keyval::get(*conn, o, key);
    if (r) return std::move(*r);
    return parley::unexpected(of(r.error()));
  }
  // As the store runs it: in a transaction of its own, rolled back on an error.
  parley::Result<void, KeyvalError> put(const KeyvalOwner& o, std::vector<KeyvalItem> items, uint64_t max = 0,
                                        KeyvalPut mode = KeyvalPut::replace) {
    REQUIRE(conn->exec("BEGIN"));
    auto r = postgres_keyval::put(*conn, o, items, max, mode);
    REQUIRE(conn->exec(r ? "COMMIT" : "ROLLBACK"));
    if (r) return {};
    return parley::unexpected(of(r.error()));
  }
  ManyResult get_many(const std::string& scope, const std::vector<std::string>& users, const std::string& key) {
    auto r = postgres_keyval::get_many(*conn, scope, users, key);
    if (r) return std::move(*r);
    return parley::unexpected(of(r.error()));
  }
  uint64_t remove(const KeyvalOwner& o, const std::string& key) { return postgres_keyval::remove(*conn, o, key).value(); }
  uint64_t remove_user(const KeyvalOwner& o) { return postgres_keyval::remove_user(*conn, o).value(); }
  // The map operations as the store runs them: in a transaction, rolled back on an error.
  template <class F>
  auto in_tx(F&& f) -> parley::Result<typename decltype(f())::value_type, KeyvalError> {
    REQUIRE(conn->exec("BEGIN"));
    auto r = f();
    REQUIRE(conn->exec(r ? "COMMIT" : "ROLLBACK"));
    if (r) return std::move(*r);
    return parley::unexpected(of(r.error()));
  }
  parley::Result<MapSnapshot, KeyvalError> map_get(const MapOwner& o) {
    return in_tx([&] { return postgres_map::get(*conn, o); });
  }
  parley::Result<MapChange, KeyvalError> map_put(const MapOwner& o, std::vector<MapItem> items, uint64_t max = 0) {
    return in_tx([&] { return postgres_map::put(*conn, o, items, max); });
  }
  parley::Result<MapChange, KeyvalError> map_remove(const MapOwner& o, std::vector<std::string> keys) {
    return in_tx([&] { return postgres_map::remove(*conn, o, keys); });
  }
  parley::Result<MapChange, KeyvalError> map_clear(const MapOwner& o) {
    return in_tx([&] { return postgres_map::clear(*conn, o); });
  }
  std::unique_ptr<PostgresKeyvalStore> store(size_t max_queue) {
    return std::make_unique<PostgresKeyvalStore>(url, max_queue);
  }
};

std::optional<std::string> value_of(GetResult r) {
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE_TEMPLATE("keyval: get, put, replace, remove; users and scopes apart; any bytes", B, SqliteKv, PgKv) {
  B b;
  CHECK(value_of(b.get(kv_alice, "vcard")) == std::nullopt);
  const std::string bytes("<vCard>\0\xff\x01</vCard>", 18);
  REQUIRE(b.put(kv_alice, {{"vcard", bytes}}));
  REQUIRE(b.put(kv_bob, {{"vcard", "bob's"}}));
  REQUIRE(b.put(kv_alice_elsewhere, {{"vcard", "another module's"}}));
  CHECK(value_of(b.get(kv_alice, "vcard")) == bytes);
  CHECK(value_of(b.get(kv_bob, "vcard")) == "bob's");
  CHECK(value_of(b.get(kv_alice_elsewhere, "vcard")) == "another module's");
  REQUIRE(b.put(kv_alice, {{"vcard", "new"}}));
  CHECK(value_of(b.get(kv_alice, "vcard")) == "new");
  REQUIRE(b.put(kv_alice, {{"", "an empty key and an empty value are values too"}, {"empty", ""}}));
  CHECK(value_of(b.get(kv_alice, "")) == "an empty key and an empty value are values too");
  CHECK(value_of(b.get(kv_alice, "empty")) == "");
  CHECK(b.remove(kv_alice, "vcard") == 1);
  CHECK(b.remove(kv_alice, "vcard") == 0);
  CHECK(value_of(b.get(kv_alice, "vcard")) == std::nullopt);
  CHECK(b.remove_user(kv_alice) == 2);
  CHECK(value_of(b.get(kv_alice, "empty")) == std::nullopt);
  // Only that user of that scope.
  CHECK(value_of(b.get(kv_bob, "vcard")) == "bob's");
  CHECK(value_of(b.get(kv_alice_elsewhere, "vcard")) == "another module's");
}

TEST_CASE_TEMPLATE("keyval: the quota counts all of a user's values, a replaced one at its new size", B, SqliteKv,
                   PgKv) {
  B b;
  REQUIRE(b.put(kv_alice, {{"a", std::string(40, 'a')}, {"b", std::string(40, 'b')}}, 100));
  // 40 + 40 + 30 > 100: refused, and nothing of it stored (neither item).
  auto over = b.put(kv_alice, {{"c", std::string(10, 'c')}, {"d", std::string(20, 'd')}}, 100);
  REQUIRE_FALSE(over);
  CHECK(over.error().condition == "policy-violation");
  CHECK(value_of(b.get(kv_alice, "c")) == std::nullopt);
  CHECK(value_of(b.get(kv_alice, "d")) == std::nullopt);
  // Replacing b (40) by 60: 40 + 60 = 100, within.
  REQUIRE(b.put(kv_alice, {{"b", std::string(60, 'B')}}, 100));
  CHECK(value_of(b.get(kv_alice, "b"))->size() == 60);
  // Another user's values do not count; no quota: anything.
  REQUIRE(b.put(kv_bob, {{"a", std::string(100, 'x')}}, 100));
  REQUIRE(b.put(kv_alice, {{"z", std::string(1000, 'z')}}));
}

TEST_CASE_TEMPLATE("keyval: put if absent keeps a value that is there (a data move never overwrites)", B, SqliteKv,
                   PgKv) {
  B b;
  REQUIRE(b.put(kv_alice, {{"vcard", "written since"}}));
  REQUIRE(b.put(kv_alice, {{"vcard", "old row"}, {"other", "old other"}}, 0, KeyvalPut::if_absent));
  CHECK(value_of(b.get(kv_alice, "vcard")) == "written since");
  CHECK(value_of(b.get(kv_alice, "other")) == "old other");
}

namespace {

template <class Store>
std::future<std::string> put_async(Store& store, const KeyvalOwner& o, std::string key, std::string value,
                                   uint64_t max = 0) {
  auto done = std::make_shared<std::promise<std::string>>();
  store.put(o, {{std::move(key), std::move(value)}}, max, KeyvalPut::replace,
            [done](parley::Result<void, KeyvalError> r) { done->set_value(r ? "ok" : r.error().condition); });
  return done->get_future();
}

template <class Store>
std::future<GetResult> get_async(Store& store, const KeyvalOwner& o, std::string key) {
  auto done = std::make_shared<std::promise<GetResult>>();
  store.get(o, std::move(key), [done](GetResult r) { done->set_value(std::move(r)); });
  return done->get_future();
}

}  // namespace

TEST_CASE_TEMPLATE("keyval store: operations in queue order (a get after a put sees it); stop, then refused", B,
                   SqliteKv, PgKv) {
  B b;
  auto store = b.store(1000);
  REQUIRE(store->start());
  std::vector<std::future<std::string>> puts;
  std::vector<std::future<GetResult>> gets;
  for (int i = 0; i < 100; ++i) {
    puts.push_back(put_async(*store, i % 2 ? kv_alice : kv_bob, "k", "v" + std::to_string(i)));
    gets.push_back(get_async(*store, i % 2 ? kv_alice : kv_bob, "k"));
  }
  for (int i = 0; i < 100; ++i) {
    CHECK(puts[i].get() == "ok");
    CHECK(value_of(gets[i].get()) == "v" + std::to_string(i));
  }
  // Over the quota, through the store: refused, the old value kept.
  CHECK(put_async(*store, kv_alice, "k", std::string(50, 'x'), 10).get() == "policy-violation");
  CHECK(value_of(get_async(*store, kv_alice, "k").get()) == "v99");
  std::promise<uint64_t> removed;
  store->remove_user(kv_bob, [&removed](parley::Result<uint64_t, KeyvalError> r) { removed.set_value(r ? *r : 999); });
  CHECK(removed.get_future().get() == 1);
  store->stop();
  CHECK(put_async(*store, kv_alice, "k", "late").get() == "resource-constraint");
  // Reopened: what was stored is there.
  auto again = b.store(10);
  REQUIRE(again->start());
  CHECK(value_of(get_async(*again, kv_alice, "k").get()) == "v99");
  CHECK(value_of(get_async(*again, kv_bob, "k").get()) == std::nullopt);
}

TEST_CASE_TEMPLATE("keyval store: a full queue refuses at once; stop fails what never ran", B, SqliteKv, PgKv) {
  B b;
  auto store = b.store(2);  // not started: nothing drains the queue
  std::vector<std::string> outcomes;
  std::mutex m;
  for (int i = 0; i < 3; ++i)
    store->put(kv_alice, {{"k", "v"}}, 0, KeyvalPut::replace, [&](parley::Result<void, KeyvalError> r) {
      std::lock_guard lock(m);
      outcomes.push_back(r ? "ok" : r.error().condition);
    });
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0] == "resource-constraint");
  CHECK(store->queue_length() == 2);
  store->stop();
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[1] == "internal-server-error");
  CHECK(outcomes[2] == "internal-server-error");
}

TEST_CASE("keyval store on PostgreSQL: a lost connection is reconnected; puts queued meanwhile are stored, and a put "
          "reported stored is") {
  PgKv b;
  auto store = b.store(1000);
  REQUIRE(store->start());
  CHECK(put_async(*store, kv_alice, "before", "1").get() == "ok");
  b.conn.reset();
  // Puts under way while the server ends the store's session (as a PostgreSQL restart
  // would): each is reported stored only if it is.
  std::vector<std::future<std::string>> puts;
  for (int i = 0; i < 50; ++i) puts.push_back(put_async(*store, kv_alice, "k" + std::to_string(i), "v"));
  auto admin = pg_connect(pg_base_url());
  PgParam name = PgParam::text(b.name);
  auto killed = admin->run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                           std::span(&name, 1));
  REQUIRE(killed);
  for (int i = 50; i < 100; ++i) puts.push_back(put_async(*store, kv_alice, "k" + std::to_string(i), "v"));
  std::vector<int> reported;
  for (int i = 0; i < 100; ++i)
    if (puts[i].get() == "ok") reported.push_back(i);
  // Writes wait for the database instead of failing: all of them are stored.
  CHECK(reported.size() == 100);
  b.conn = pg_connect(b.url);
  for (int i : reported) CHECK(value_of(b.get(kv_alice, "k" + std::to_string(i))) == "v");
  store->stop();
}

TEST_CASE("keyval store on PostgreSQL: an unreachable database fails start() with a reason") {
  PostgresKeyvalStore store("postgresql://parley@127.0.0.1:9/none?connect_timeout=5", 10);
  auto started = store.start();
  REQUIRE_FALSE(started);
  CHECK(started.error().message.find("127.0.0.1") != std::string::npos);
}

// ---- the map store (served by the same stores) ----

namespace {

std::vector<std::string> keys_of(const MapSnapshot& s) {
  std::vector<std::string> out;
  for (const auto& item : s.items) out.push_back(item.key);
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("map: items in the order first put, a version bumped with every change", B, SqliteKv, PgKv) {
  B b;
  auto empty = b.map_get(kv_alice);
  REQUIRE(empty);
  CHECK(empty->version == 0);
  CHECK(empty->items.empty());
  auto first = b.map_put(kv_alice, {{"c@x", "1"}, {"a@x", "2"}});
  REQUIRE(first);
  CHECK(first->version == 1);
  CHECK(first->changed == 2);
  REQUIRE(b.map_put(kv_alice, {{"b@x", "3"}}));
  // Replacing a's value keeps its place.
  auto replaced = b.map_put(kv_alice, {{"a@x", "2'"}});
  REQUIRE(replaced);
  CHECK(replaced->version == 3);
  auto snap = b.map_get(kv_alice);
  REQUIRE(snap);
  CHECK(snap->version == 3);
  CHECK(keys_of(*snap) == std::vector<std::string>{"c@x", "a@x", "b@x"});
  CHECK(snap->items[1].value == "2'");
  // Removing what is there bumps; removing nothing does not.
  auto removed = b.map_remove(kv_alice, {"c@x", "nobody@x"});
  REQUIRE(removed);
  CHECK(removed->changed == 1);
  CHECK(removed->version == 4);
  auto nothing = b.map_remove(kv_alice, {"nobody@x"});
  REQUIRE(nothing);
  CHECK(nothing->changed == 0);
  CHECK(nothing->version == 4);
  // Another user's and another scope's maps are apart.
  REQUIRE(b.map_put(kv_bob, {{"z@x", ""}}));
  REQUIRE(b.map_put(kv_alice_elsewhere, {{"y@x", ""}}));
  CHECK(keys_of(*b.map_get(kv_alice)) == std::vector<std::string>{"a@x", "b@x"});
  // Cleared: empty, and the version goes on (a client's old version never matches).
  auto cleared = b.map_clear(kv_alice);
  REQUIRE(cleared);
  CHECK(cleared->changed == 2);
  CHECK(cleared->version == 5);
  auto after = b.map_get(kv_alice);
  CHECK(after->items.empty());
  CHECK(after->version == 5);
  CHECK(b.map_get(kv_bob)->items.size() == 1);
  CHECK(b.map_get(kv_alice_elsewhere)->items.size() == 1);
  // A key added after the clear goes at the end of a fresh order.
  REQUIRE(b.map_put(kv_alice, {{"b@x", ""}}));
  REQUIRE(b.map_put(kv_alice, {{"a@x", ""}}));
  CHECK(keys_of(*b.map_get(kv_alice)) == std::vector<std::string>{"b@x", "a@x"});
}

TEST_CASE_TEMPLATE("map: a put over max_items stores nothing and keeps the version", B, SqliteKv, PgKv) {
  B b;
  REQUIRE(b.map_put(kv_alice, {{"a", ""}, {"b", ""}}, 3));
  auto over = b.map_put(kv_alice, {{"c", ""}, {"d", ""}}, 3);
  REQUIRE_FALSE(over);
  CHECK(over.error().condition == "policy-violation");
  auto snap = b.map_get(kv_alice);
  CHECK(keys_of(*snap) == std::vector<std::string>{"a", "b"});
  CHECK(snap->version == 1);
  // Replacing counts nothing new.
  REQUIRE(b.map_put(kv_alice, {{"a", "x"}, {"b", "y"}, {"c", "z"}}, 3));
}

TEST_CASE_TEMPLATE("map store: in queue order with the keyval operations; a get after a change sees it", B, SqliteKv,
                   PgKv) {
  B b;
  auto store = b.store(1000);
  REQUIRE(store->start());
  std::vector<std::future<uint64_t>> versions;
  for (int i = 0; i < 20; ++i) {
    auto done = std::make_shared<std::promise<uint64_t>>();
    versions.push_back(done->get_future());
    store->map_put(kv_alice, {{"k" + std::to_string(i), "v"}}, 0, [done](parley::Result<MapChange, KeyvalError> r) {
      done->set_value(r ? r->version : 0);
    });
  }
  std::promise<MapSnapshot> snap;
  store->map_get(kv_alice, [&snap](parley::Result<MapSnapshot, KeyvalError> r) { snap.set_value(r ? *r : MapSnapshot{}); });
  for (int i = 0; i < 20; ++i) CHECK(versions[i].get() == static_cast<uint64_t>(i + 1));
  auto got = snap.get_future().get();
  CHECK(got.version == 20);
  CHECK(got.items.size() == 20);
  std::promise<uint64_t> cleared;
  store->map_clear(kv_alice, [&cleared](parley::Result<MapChange, KeyvalError> r) { cleared.set_value(r ? r->changed : 0); });
  CHECK(cleared.get_future().get() == 20);
  store->stop();
}

// ---- get_many: one key of many users (ABI 1.8 keyval_get_many) ----

namespace {

// user -> value of a get_many's items, which come bytewise by user, each user once.
std::map<std::string, std::string> by_user(ManyResult r) {
  REQUIRE(r);
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < r->size(); ++i) {
    if (i > 0) CHECK((*r)[i - 1].key < (*r)[i].key);
    out.emplace((*r)[i].key, (*r)[i].value);
  }
  return out;
}

std::string user_n(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "u%04d", i);
  return name;
}

template <class Store>
std::future<ManyResult> get_many_async(Store& store, const std::string& scope, std::vector<std::string> users,
                                       std::string key) {
  auto done = std::make_shared<std::promise<ManyResult>>();
  store.get_many(scope, std::move(users), std::move(key), [done](ManyResult r) { done->set_value(std::move(r)); });
  return done->get_future();
}

}  // namespace

TEST_CASE_TEMPLATE("keyval get_many: none asked, missing users absent, other keys and scopes apart, more users than "
                   "a statement takes, users with odd bytes",
                   B, SqliteKv, PgKv) {
  B b;
  const std::string scope = kv_alice.scope;
  CHECK(by_user(b.get_many(scope, {}, "last")).empty());
  CHECK(by_user(b.get_many(scope, {"nobody", "nobody else"}, "last")).empty());
  // 600 users with the key: three statements of 256 (the last one part full).
  std::vector<std::string> asked;
  for (int i = 0; i < 600; ++i) {
    REQUIRE(b.put(KeyvalOwner{scope, user_n(i)}, {{"last", "v" + std::to_string(i)}}));
    asked.push_back(user_n(i));
  }
  // Not theirs: another key of a user asked, and the key of a user asked in another scope.
  REQUIRE(b.put(KeyvalOwner{scope, "other-key"}, {{"first", "x"}}));
  REQUIRE(b.put(KeyvalOwner{kv_alice_elsewhere.scope, "elsewhere"}, {{"last", "x"}}));
  asked.push_back("other-key");
  asked.push_back("elsewhere");
  for (int i = 600; i < 700; ++i) asked.push_back(user_n(i));  // never stored
  auto got = by_user(b.get_many(scope, asked, "last"));
  REQUIRE(got.size() == 600);
  for (int i = 0; i < 600; ++i) CHECK(got[user_n(i)] == "v" + std::to_string(i));
  // Users that a text array or a list of SQL would have to quote, and bytes as values.
  const std::vector<std::string> odd = {"NULL", "a,b", "{x}", "\"q\"", "back\\slash", "caf\xc3\xa9", "with space",
                                        "'; DROP TABLE keyval; --", "tab\tnew\nline", "(", ")", "*"};
  const std::string bytes("\0\xff\x01value", 8);
  for (const std::string& u : odd) REQUIRE(b.put(KeyvalOwner{scope, u}, {{"last", u + bytes}}));
  std::vector<std::string> odd_asked = odd;
  odd_asked.push_back("NUL");  // a prefix of one of them, not stored
  auto odd_got = by_user(b.get_many(scope, odd_asked, "last"));
  REQUIRE(odd_got.size() == odd.size());
  for (const std::string& u : odd) CHECK(odd_got[u] == u + bytes);
}

TEST_CASE_TEMPLATE("keyval store: get_many sees every write queued before it and none after; a user asked twice "
                   "comes once",
                   B, SqliteKv, PgKv) {
  B b;
  auto store = b.store(10000);
  REQUIRE(store->start());
  const std::string scope = kv_alice.scope;
  std::vector<std::string> users;
  std::vector<std::future<std::string>> puts;
  for (int i = 0; i < 300; ++i) {
    users.push_back(user_n(i));
    puts.push_back(put_async(*store, KeyvalOwner{scope, user_n(i)}, "last", "first"));
  }
  users.push_back(user_n(7));  // twice
  std::promise<uint64_t> removed;
  store->remove_user(KeyvalOwner{scope, user_n(0)},
                     [&removed](parley::Result<uint64_t, KeyvalError> r) { removed.set_value(r ? *r : 999); });
  auto before = get_many_async(*store, scope, users, "last");
  // Queued after it: not seen by it, seen by the next.
  for (int i = 0; i < 300; ++i) puts.push_back(put_async(*store, KeyvalOwner{scope, user_n(i)}, "last", "second"));
  auto after = get_many_async(*store, scope, users, "last");
  for (auto& p : puts) CHECK(p.get() == "ok");
  CHECK(removed.get_future().get() == 1);
  auto first = by_user(before.get());
  CHECK(first.size() == 299);  // user 0's removed; user 7 once
  CHECK(first.count(user_n(0)) == 0);
  for (int i = 1; i < 300; ++i) CHECK(first[user_n(i)] == "first");
  auto second = by_user(after.get());
  CHECK(second.size() == 300);
  for (int i = 0; i < 300; ++i) CHECK(second[user_n(i)] == "second");
  CHECK(by_user(get_many_async(*store, scope, {}, "last").get()).empty());
  store->stop();
  // Stopped: refused at once.
  auto late = get_many_async(*store, scope, users, "last").get();
  REQUIRE_FALSE(late);
  CHECK(late.error().condition == "resource-constraint");
}
