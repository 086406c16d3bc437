// The account store on both backends: the operations (create, exists, credentials,
// password change, removal, listing) on SQLite and PostgreSQL, the PostgreSQL store's
// threads and order, and a database that is away (errors, not waits).
//
// The PostgreSQL cases need $PARLEY_TEST_PG_URL (see archive_store_test.cpp).
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include "storage/postgres_account_store.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/user_store.hpp"
#include "pg_test_support.hpp"
#include "temp_dir.hpp"

using namespace parley::storage;

namespace {

using parley::test::pg_base_url;
using parley::test::pg_connect;
using parley::test::terminate_sessions_of;

ScramRecord account_record(std::string mechanism, char fill) {
  ScramRecord r;
  r.mechanism = std::move(mechanism);
  r.salt = std::string("\0salt", 5) + std::string(11, fill);  // raw bytes, NUL included
  r.iterations = 4096;
  r.stored_key = std::string(32, fill);
  r.stored_key[0] = '\0';
  r.server_key = std::string(32, static_cast<char>(fill + 1));
  return r;
}

struct SqliteAccounts {
  parley::test::TempDir dir;
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteAccountBackend> backend;
  SqliteAccounts() {
    auto opened = Database::open(dir.file("u.db"), Database::Mode::read_write);
    REQUIRE(opened.has_value());
    db = std::move(*opened);
    REQUIRE(migrate_builtin(*db).has_value());
    backend = std::make_unique<SqliteAccountBackend>(*db);
  }
  AccountBackend& b() { return *backend; }
};

// A schema of its own per case (the URL sets the search_path).
struct PgAccounts : parley::test::PgSchema {
  std::unique_ptr<PgConnection> conn;
  std::unique_ptr<PgAccountBackend> backend;  // after conn: it goes first
  PgAccounts() : PgSchema("account_test") {
    conn = pg_connect(url);
    REQUIRE(pg_migrate(*conn, "accounts", postgres_accounts::migrations()));
    backend = std::make_unique<PgAccountBackend>(conn.get());
  }
  AccountBackend& b() { return *backend; }
};

}  // namespace

TEST_CASE_TEMPLATE("accounts: create, exists, credentials, password change, removal, listing", B, SqliteAccounts,
                   PgAccounts) {
  B store;
  AccountBackend& a = store.b();
  std::vector<ScramRecord> creds{account_record("SCRAM-SHA-1", 'a'), account_record("SCRAM-SHA-256", 'b')};
  CHECK(*a.create_user("example.org", "alice", creds) == true);
  CHECK(*a.create_user("example.org", "alice", creds) == false);  // exists: nothing changed
  CHECK(*a.create_user("example.org", "bob", creds) == true);
  CHECK(*a.create_user("other.org", "alice", creds) == true);
  CHECK(*a.user_exists("example.org", "alice"));
  CHECK_FALSE(*a.user_exists("example.org", "carol"));

  auto got = a.get_credentials("example.org", "alice", "SCRAM-SHA-256");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->salt == creds[1].salt);  // bytes, NUL included
  CHECK((*got)->stored_key == creds[1].stored_key);
  CHECK((*got)->server_key == creds[1].server_key);
  CHECK((*got)->iterations == 4096);
  CHECK_FALSE(a.get_credentials("example.org", "alice", "SCRAM-SHA-512")->has_value());
  CHECK_FALSE(a.get_credentials("example.org", "carol", "SCRAM-SHA-256")->has_value());

  std::vector<ScramRecord> changed{account_record("SCRAM-SHA-256", 'z')};
  CHECK(*a.set_credentials("example.org", "alice", changed) == true);
  CHECK((*a.get_credentials("example.org", "alice", "SCRAM-SHA-256"))->salt == changed[0].salt);
  CHECK_FALSE(a.get_credentials("example.org", "alice", "SCRAM-SHA-1")->has_value());  // replaced, all of them
  CHECK(*a.set_credentials("example.org", "carol", changed) == false);
  CHECK_FALSE(*a.user_exists("example.org", "carol"));

  CHECK(*a.list_users("example.org") == std::vector<std::string>{"alice", "bob"});
  CHECK(*a.remove_user("example.org", "alice") == true);
  CHECK(*a.remove_user("example.org", "alice") == false);
  CHECK_FALSE(a.get_credentials("example.org", "alice", "SCRAM-SHA-256")->has_value());  // removed with it
  CHECK(*a.list_users("example.org") == std::vector<std::string>{"bob"});
  CHECK(*a.list_users("other.org") == std::vector<std::string>{"alice"});
}

TEST_CASE_TEMPLATE("accounts: disabled and re-enabled (XEP-0133), the flag read with the credentials", B,
                   SqliteAccounts, PgAccounts) {
  B store;
  AccountBackend& a = store.b();
  std::vector<ScramRecord> creds{account_record("SCRAM-SHA-256", 'b')};
  REQUIRE(*a.create_user("example.org", "alice", creds));
  REQUIRE(*a.create_user("example.org", "bob", creds));
  REQUIRE(*a.create_user("other.org", "alice", creds));
  CHECK_FALSE((*a.get_credentials("example.org", "alice", "SCRAM-SHA-256"))->account_disabled);
  CHECK(a.list_disabled("example.org")->empty());

  CHECK(*a.set_disabled("example.org", "alice", true) == true);
  CHECK(*a.set_disabled("example.org", "carol", true) == false);  // no such user
  auto got = a.get_credentials("example.org", "alice", "SCRAM-SHA-256");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->account_disabled);
  CHECK((*got)->stored_key == creds[0].stored_key);  // the account keeps its credentials
  CHECK_FALSE((*a.get_credentials("other.org", "alice", "SCRAM-SHA-256"))->account_disabled);  // per host
  CHECK(*a.list_disabled("example.org") == std::vector<std::string>{"alice"});
  CHECK(*a.list_users("example.org") == std::vector<std::string>{"alice", "bob"});  // still an account

  // A password change keeps the flag; re-enabling clears it.
  CHECK(*a.set_credentials("example.org", "alice", {account_record("SCRAM-SHA-256", 'z')}));
  CHECK((*a.get_credentials("example.org", "alice", "SCRAM-SHA-256"))->account_disabled);
  CHECK(*a.set_disabled("example.org", "alice", false) == true);
  CHECK_FALSE((*a.get_credentials("example.org", "alice", "SCRAM-SHA-256"))->account_disabled);
  CHECK(a.list_disabled("example.org")->empty());

  // An account removed and made again starts enabled.
  REQUIRE(*a.set_disabled("example.org", "bob", true));
  REQUIRE(*a.remove_user("example.org", "bob"));
  REQUIRE(*a.create_user("example.org", "bob", creds));
  CHECK_FALSE((*a.get_credentials("example.org", "bob", "SCRAM-SHA-256"))->account_disabled);
}

TEST_CASE("accounts: a database made before the disabled flag migrates, its accounts enabled") {
  parley::test::TempDir dir;
  auto opened = Database::open(dir.file("old.db"), Database::Mode::read_write);
  REQUIRE(opened.has_value());
  Database& db = **opened;
  REQUIRE(db.migrate("users", user_store::migrations().first(1)).has_value());  // the schema of before
  REQUIRE(*user_store::create_user(db, "example.org", "alice", {account_record("SCRAM-SHA-256", 'b')}));
  REQUIRE(migrate_builtin(db).has_value());
  CHECK(*db.schema_version("users") == 2);
  SqliteAccountBackend a(db);
  auto got = a.get_credentials("example.org", "alice", "SCRAM-SHA-256");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK_FALSE((*got)->account_disabled);
  CHECK(*a.set_disabled("example.org", "alice", true));
}

TEST_CASE("accounts on PostgreSQL: a schema made before the disabled flag migrates, its accounts enabled") {
  PgAccounts store;  // migrated already: start over at step 1
  REQUIRE(store.conn->exec("DROP TABLE scram_credentials; DROP TABLE users; DELETE FROM parley_schema"));
  REQUIRE(pg_migrate(*store.conn, "accounts", postgres_accounts::migrations().first(1)));
  REQUIRE(*store.b().create_user("example.org", "alice", {account_record("SCRAM-SHA-256", 'b')}));
  REQUIRE(pg_migrate(*store.conn, "accounts", postgres_accounts::migrations()));
  auto got = store.b().get_credentials("example.org", "alice", "SCRAM-SHA-256");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK_FALSE((*got)->account_disabled);
}

TEST_CASE("accounts on PostgreSQL: listing is bytewise, as on SQLite") {
  PgAccounts store;
  AccountBackend& a = store.b();
  for (const char* user : {"b", "B", "a", "\xc3\xa9"}) REQUIRE(*a.create_user("example.org", user, {}));
  CHECK(*a.list_users("example.org") == std::vector<std::string>{"B", "a", "b", "\xc3\xa9"});
}

TEST_CASE("account store on PostgreSQL: jobs run off the caller, writes in order; an unreachable database fails") {
  PgAccounts schema;
  schema.backend.reset();
  schema.conn.reset();
  PostgresAccountStore store(schema.url, 2);
  REQUIRE(store.start());
  std::vector<std::future<bool>> done;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<bool>>();
    done.push_back(p->get_future());
    store.write([p, i](AccountBackend& a) {
      auto r = a.create_user("example.org", "u" + std::to_string(100 + i), {account_record("SCRAM-SHA-256", 'x')});
      p->set_value(r && *r);
    });
  }
  // A write queued after them sees them all (one writer, FIFO).
  std::promise<size_t> count;
  store.write([&count](AccountBackend& a) {
    auto r = a.list_users("example.org");
    count.set_value(r ? r->size() : 0);
  });
  for (auto& f : done) CHECK(f.get());
  CHECK(count.get_future().get() == 20);
  std::promise<bool> read;
  store.read([&read](AccountBackend& a) {
    auto r = a.get_credentials("example.org", "u105", "SCRAM-SHA-256");
    read.set_value(r && r->has_value());
  });
  CHECK(read.get_future().get());
  store.stop();
  // After stop a job still runs (once), and its operations fail.
  bool ran = false;
  store.read([&ran](AccountBackend& a) { ran = !a.user_exists("example.org", "u100").has_value(); });
  CHECK(ran);

  PostgresAccountStore away("postgresql://parley@127.0.0.1:9/none?connect_timeout=5", 1);
  auto started = away.start();
  REQUIRE_FALSE(started);
  CHECK(started.error().message.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("account store on PostgreSQL: after the database dropped its connections, the next look-ups succeed") {
  PgAccounts schema;
  REQUIRE(*schema.b().create_user("example.org", "alice", {account_record("SCRAM-SHA-256", 'a')}));
  schema.backend.reset();
  schema.conn.reset();
  PostgresAccountStore store(schema.url, 1);
  REQUIRE(store.start());
  // As a restart of PostgreSQL would: every connection of the store ends.
  REQUIRE(terminate_sessions_of(schema.name, 2) == 2);  // the writer's and the reader's
  std::promise<bool> read;
  store.read([&read](AccountBackend& a) {
    auto r = a.get_credentials("example.org", "alice", "SCRAM-SHA-256");
    read.set_value(r && r->has_value());
  });
  CHECK(read.get_future().get());
  std::promise<bool> exists;
  store.write([&exists](AccountBackend& a) {
    auto r = a.user_exists("example.org", "alice");
    exists.set_value(r && *r);
  });
  CHECK(exists.get_future().get());
}
