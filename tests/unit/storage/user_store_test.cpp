#include "storage/user_store.hpp"

#include <doctest/doctest.h>

#include "storage/schema.hpp"
#include "temp_dir.hpp"

using parley::storage::Database;
using parley::storage::ScramRecord;
using parley::test::TempDir;
namespace us = parley::storage::user_store;

namespace {

std::unique_ptr<Database> open_db(const TempDir& dir) {
  auto db = Database::open(dir.file("u.db"), Database::Mode::read_write);
  REQUIRE(db.has_value());
  REQUIRE(parley::storage::migrate_builtin(**db).has_value());
  return std::move(*db);
}

ScramRecord record(std::string mechanism, char fill, uint32_t iterations = 4096) {
  ScramRecord r;
  r.mechanism = std::move(mechanism);
  r.salt = std::string("\0salt", 5) + std::string(11, fill);  // raw bytes, NUL included
  r.iterations = iterations;
  size_t key = r.mechanism == "SCRAM-SHA-1" ? 20 : 32;
  r.stored_key = std::string(key, fill);
  r.stored_key[0] = '\0';
  r.server_key = std::string(key, static_cast<char>(fill + 1));
  return r;
}

void check_same(const ScramRecord& a, const ScramRecord& b) {
  CHECK(a.mechanism == b.mechanism);
  CHECK(a.salt == b.salt);
  CHECK(a.iterations == b.iterations);
  CHECK(a.stored_key == b.stored_key);
  CHECK(a.server_key == b.server_key);
}

bool exists(Database& db, std::string_view host, std::string_view user) {
  auto r = us::user_exists(db, host, user);
  REQUIRE(r.has_value());
  return *r;
}

std::optional<ScramRecord> get(Database& db, std::string_view host, std::string_view user,
                               std::string_view mechanism) {
  auto r = us::get_credentials(db, host, user, mechanism);
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

TEST_CASE("create, read back, refuse a duplicate") {
  TempDir dir;
  auto db = open_db(dir);
  const std::vector<ScramRecord> creds = {record("SCRAM-SHA-1", 'a'), record("SCRAM-SHA-256", 'b', 10000)};
  CHECK_FALSE(exists(*db, "localhost", "alice"));

  auto created = us::create_user(*db, "localhost", "alice", creds);
  REQUIRE(created.has_value());
  CHECK(*created);
  CHECK(exists(*db, "localhost", "alice"));
  CHECK_FALSE(exists(*db, "example.org", "alice"));  // users are per host
  CHECK_FALSE(exists(*db, "localhost", "Alice"));    // stored as given: nodeprep is the caller's

  auto sha1 = get(*db, "localhost", "alice", "SCRAM-SHA-1");
  REQUIRE(sha1.has_value());
  check_same(*sha1, creds[0]);
  auto sha256 = get(*db, "localhost", "alice", "SCRAM-SHA-256");
  REQUIRE(sha256.has_value());
  check_same(*sha256, creds[1]);
  CHECK_FALSE(get(*db, "localhost", "alice", "SCRAM-SHA-512").has_value());
  CHECK_FALSE(get(*db, "localhost", "bob", "SCRAM-SHA-1").has_value());

  auto again = us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-1", 'z')});
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);
  check_same(*get(*db, "localhost", "alice", "SCRAM-SHA-1"), creds[0]);  // untouched
  CHECK_FALSE(db->in_transaction());
}

TEST_CASE("a failing create leaves nothing behind") {
  TempDir dir;
  auto db = open_db(dir);
  // Two records for one mechanism break the primary key half-way through.
  auto r = us::create_user(*db, "localhost", "carol", {record("SCRAM-SHA-1", 'a'), record("SCRAM-SHA-1", 'b')});
  CHECK_FALSE(r.has_value());
  CHECK_FALSE(exists(*db, "localhost", "carol"));
  CHECK_FALSE(db->in_transaction());
  CHECK_FALSE(us::create_user(*db, "localhost", "carol", {ScramRecord{}}).has_value());  // no mechanism
  CHECK_FALSE(exists(*db, "localhost", "carol"));
}

TEST_CASE("set_credentials replaces every record") {
  TempDir dir;
  auto db = open_db(dir);
  REQUIRE(*us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-1", 'a'), record("SCRAM-SHA-256", 'b')}));
  const ScramRecord fresh = record("SCRAM-SHA-256", 'q', 8192);
  auto set = us::set_credentials(*db, "localhost", "alice", {fresh});
  REQUIRE(set.has_value());
  CHECK(*set);
  check_same(*get(*db, "localhost", "alice", "SCRAM-SHA-256"), fresh);
  CHECK_FALSE(get(*db, "localhost", "alice", "SCRAM-SHA-1").has_value());

  auto missing = us::set_credentials(*db, "localhost", "nobody", {fresh});
  REQUIRE(missing.has_value());
  CHECK_FALSE(*missing);
  CHECK_FALSE(exists(*db, "localhost", "nobody"));
}

TEST_CASE("remove_user takes the credentials with it") {
  TempDir dir;
  auto db = open_db(dir);
  REQUIRE(*us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-1", 'a')}));
  REQUIRE(*us::create_user(*db, "localhost", "bob", {record("SCRAM-SHA-1", 'b')}));
  auto removed = us::remove_user(*db, "localhost", "alice");
  REQUIRE(removed.has_value());
  CHECK(*removed);
  CHECK_FALSE(exists(*db, "localhost", "alice"));
  CHECK_FALSE(get(*db, "localhost", "alice", "SCRAM-SHA-1").has_value());
  CHECK(exists(*db, "localhost", "bob"));

  auto again = us::remove_user(*db, "localhost", "alice");
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);

  // The name can be registered again, with new credentials only.
  REQUIRE(*us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-256", 'c')}));
  CHECK_FALSE(get(*db, "localhost", "alice", "SCRAM-SHA-1").has_value());
}

TEST_CASE("list_users is per host and sorted") {
  TempDir dir;
  auto db = open_db(dir);
  for (const char* u : {"zoe", "alice", "\xc3\xa9mile", "bob", "Bob"}) {
    REQUIRE(*us::create_user(*db, "localhost", u, {record("SCRAM-SHA-1", 'a')}));
  }
  REQUIRE(*us::create_user(*db, "example.org", "carol", {}));  // an account without records
  auto users = us::list_users(*db, "localhost");
  REQUIRE(users.has_value());
  CHECK(*users == std::vector<std::string>{"Bob", "alice", "bob", "zoe", "\xc3\xa9mile"});
  auto other = us::list_users(*db, "example.org");
  REQUIRE(other.has_value());
  CHECK(*other == std::vector<std::string>{"carol"});
  auto none = us::list_users(*db, "nowhere.test");
  REQUIRE(none.has_value());
  CHECK(none->empty());
}

TEST_CASE("user_store calls compose inside a caller's transaction") {
  TempDir dir;
  auto db = open_db(dir);
  {
    auto txn = db->begin();
    REQUIRE(txn.has_value());
    REQUIRE(*us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-1", 'a')}));
    CHECK_FALSE(*us::create_user(*db, "localhost", "alice", {}));  // its savepoint rolls back alone
    REQUIRE(*us::create_user(*db, "localhost", "bob", {}));
    CHECK(db->in_transaction());
    // No commit: everything goes.
  }
  CHECK_FALSE(exists(*db, "localhost", "alice"));
  CHECK_FALSE(exists(*db, "localhost", "bob"));
}

TEST_CASE("a read-only connection sees accounts but cannot create them") {
  TempDir dir;
  auto db = open_db(dir);
  REQUIRE(*us::create_user(*db, "localhost", "alice", {record("SCRAM-SHA-1", 'a')}));
  auto ro = Database::open(dir.file("u.db"), Database::Mode::read_only);
  REQUIRE(ro.has_value());
  CHECK(exists(**ro, "localhost", "alice"));
  CHECK(get(**ro, "localhost", "alice", "SCRAM-SHA-1").has_value());
  CHECK_FALSE(us::create_user(**ro, "localhost", "bob", {}).has_value());
}
