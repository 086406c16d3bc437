#include <doctest/doctest.h>

#include <array>
#include <string_view>

#include "storage/database.hpp"
#include "storage/schema.hpp"
#include "open_db.hpp"
#include "temp_dir.hpp"

using parley::storage::Database;
using parley::test::open_rw;
using parley::test::TempDir;

namespace {

bool has_table(Database& db, std::string_view name) {
  auto st = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  REQUIRE(st.has_value());
  REQUIRE((*st)->bind(1, name).has_value());
  auto row = (*st)->step();
  REQUIRE(row.has_value());
  bool found = *row;
  (*st)->reset();
  return found;
}

int64_t version(Database& db, std::string_view component) {
  auto v = db.schema_version(component);
  REQUIRE(v.has_value());
  return *v;
}

// Plain CREATE TABLE (no IF NOT EXISTS): running a step twice would fail.
constexpr std::array<std::string_view, 2> kTwo = {
    "CREATE TABLE a (x INTEGER)",
    "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (1)",
};
constexpr std::array<std::string_view, 3> kThree = {kTwo[0], kTwo[1], "ALTER TABLE a ADD COLUMN z TEXT"};

}  // namespace

TEST_CASE("migrate runs the steps once, in order, and records the version") {
  TempDir dir;
  auto db = open_rw(dir.file("m.db"));
  CHECK(version(*db, "test") == 0);
  REQUIRE(db->migrate("test", kTwo).has_value());
  CHECK(version(*db, "test") == 2);
  CHECK(has_table(*db, "a"));
  CHECK(has_table(*db, "b"));

  SUBCASE("idempotent") {
    auto again = db->migrate("test", kTwo);
    CHECK_MESSAGE(again.has_value(), (again ? "" : again.error().message));
    CHECK(version(*db, "test") == 2);
  }
  SUBCASE("idempotent across connections") {
    db.reset();
    auto reopened = open_rw(dir.file("m.db"));
    CHECK(reopened->migrate("test", kTwo).has_value());
  }
  SUBCASE("a new step runs alone") {
    REQUIRE(db->migrate("test", kThree).has_value());
    CHECK(version(*db, "test") == 3);
  }
  SUBCASE("components are versioned independently") {
    constexpr std::array<std::string_view, 1> other = {"CREATE TABLE c (z INTEGER)"};
    REQUIRE(db->migrate("other", other).has_value());
    CHECK(version(*db, "other") == 1);
    CHECK(version(*db, "test") == 2);
  }
  SUBCASE("a database newer than the build is refused") {
    constexpr std::array<std::string_view, 1> older = {kTwo[0]};
    auto r = db->migrate("test", older);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("newer") != std::string::npos);
    CHECK(version(*db, "test") == 2);
  }
}

TEST_CASE("a failing step rolls back, keeping the steps before it") {
  TempDir dir;
  auto db = open_rw(dir.file("m.db"));
  constexpr std::array<std::string_view, 3> steps = {
      "CREATE TABLE a (x INTEGER)",
      // The first statement succeeds, the second fails: neither may remain.
      "CREATE TABLE half (y INTEGER); INSERT INTO no_such_table VALUES (1)",
      "CREATE TABLE never (z INTEGER)",
  };
  auto r = db->migrate("test", steps);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("version 2") != std::string::npos);
  CHECK(r.error().message.find("no_such_table") != std::string::npos);
  CHECK(version(*db, "test") == 1);
  CHECK(has_table(*db, "a"));
  CHECK_FALSE(has_table(*db, "half"));
  CHECK_FALSE(has_table(*db, "never"));
  CHECK_FALSE(db->in_transaction());

  // Fixed in a later build: the migration carries on from version 1.
  constexpr std::array<std::string_view, 3> fixed = {steps[0], "CREATE TABLE half (y INTEGER)", steps[2]};
  REQUIRE(db->migrate("test", fixed).has_value());
  CHECK(version(*db, "test") == 3);
  CHECK(has_table(*db, "half"));
  CHECK(has_table(*db, "never"));
}

TEST_CASE("migrate refuses an empty component name") {
  TempDir dir;
  auto db = open_rw(dir.file("m.db"));
  CHECK_FALSE(db->migrate("", kTwo).has_value());
}

TEST_CASE("the built-in schema migrates and is idempotent") {
  TempDir dir;
  auto db = open_rw(dir.file("m.db"));
  REQUIRE(parley::storage::migrate_builtin(*db).has_value());
  REQUIRE(parley::storage::migrate_builtin(*db).has_value());
  CHECK(has_table(*db, "users"));
  CHECK(has_table(*db, "scram_credentials"));
  CHECK(version(*db, "users") >= 1);
}
