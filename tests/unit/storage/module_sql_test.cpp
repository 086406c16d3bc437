// Modules' own SQL (ABI 1.7): the fence's parsers (storage/module_sql.hpp) and the
// PostgreSQL runner (storage/postgres_module_sql.hpp) on a real PostgreSQL.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <string>
#include <vector>

#include "pg_test_support.hpp"
#include "storage/module_sql.hpp"
#include "storage/postgres_module_sql.hpp"

using parley::storage::ModuleSqlResult;
using parley::storage::ModuleSqlValue;
using parley::storage::PgConnection;
using parley::storage::PgParam;
using parley::storage::PostgresModuleSql;
using parley::test::pg_base_url;
using parley::test::pg_connect;
namespace module_sql = parley::storage::module_sql;

TEST_CASE("module SQL: the first keyword skips whitespace and comments, nested ones too") {
  CHECK(module_sql::first_keyword("SELECT 1") == "select");
  CHECK(module_sql::first_keyword("  \n\tInSeRt INTO t VALUES (1)") == "insert");
  CHECK(module_sql::first_keyword("-- a comment\n  /* one /* nested */ still */ delete FROM t") == "delete");
  CHECK(module_sql::first_keyword("/* never closed SELECT 1") == "");
  CHECK(module_sql::first_keyword("-- only a comment") == "");
  CHECK(module_sql::first_keyword("") == "");
  CHECK(module_sql::first_keyword("(SELECT 1)") == "");
}

TEST_CASE("module SQL: only DML runs at run time") {
  for (const char* ok : {"SELECT 1", "insert into t values (1)", "UPDATE t SET a = 1", "DELETE FROM t",
                         "WITH x AS (SELECT 1) SELECT * FROM x", "VALUES (1), (2)", "/* c */ select 1"})
    CHECK_MESSAGE(module_sql::is_runtime_statement(ok), ok);
  for (const char* refused : {"CREATE TABLE t (a int)", "DROP TABLE t", "ALTER TABLE t ADD b int", "TRUNCATE t",
                              "SET search_path TO public", "COPY t FROM '/etc/passwd'", "GRANT ALL ON t TO x",
                              "SELECTED", "", "-- nothing", "LOCK t", "RESET ALL", "DO $$ BEGIN END $$"})
    CHECK_MESSAGE(!module_sql::is_runtime_statement(refused), refused);
}

TEST_CASE("module SQL: a plan's relations, with their schemas, at any depth") {
  const char* plan = R"([
  {
    "Plan": {
      "Node Type": "ModifyTable", "Operation": "Insert", "Relation Name": "notes", "Schema": "mod_a",
      "Alias": "notes", "Startup Cost": 0.00, "Parallel Aware": false,
      "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "users", "Schema": "public", "Alias": "u",
         "Output": ["u.username", "\"Schema\": \"x\"", "a\\b"], "Filter": null},
        {"Node Type": "Function Scan", "Function Name": "generate_series", "Schema": "pg_catalog"},
        {"Node Type": "Result", "Plans": []}
      ]
    }
  }
])";
  auto relations = module_sql::plan_relations(plan);
  REQUIRE_MESSAGE(relations, (relations ? "" : relations.error()));
  // Inner nodes first (each node is reported once its object ends).
  REQUIRE(relations->size() == 2);
  CHECK((*relations)[0] == std::pair<std::string, std::string>{"public", "users"});
  CHECK((*relations)[1] == std::pair<std::string, std::string>{"mod_a", "notes"});
  CHECK(module_sql::plan_relations("[]")->empty());
  for (const char* bad : {"", "[", "[{\"Plan\": }]", "[{\"a\" 1}]", "{\"a\": \"unfinished}", "[] x", "[1,]x"})
    CHECK_MESSAGE(!module_sql::plan_relations(bad), bad);
  CHECK(module_sql::quoted_schema("mod_x") == "\"mod_x\"");
  CHECK(module_sql::quoted_schema("a\"b") == "\"a\"\"b\"");
}

namespace {

// A schema of its own for the server's bookkeeping (the URL's search_path), and module
// names of this case's own: no case sees another's tables.
struct ModuleSqlDb : parley::test::PgSchema {
  std::vector<std::string> modules;

  ModuleSqlDb() : PgSchema("module_sql_test") {}
  std::string module(const std::string& suffix) {
    modules.push_back(name + "_" + suffix);
    return modules.back();
  }
  ~ModuleSqlDb() {  // the modules' schemas; PgSchema drops its own
    if (auto admin = PgConnection::connect(pg_base_url(), std::chrono::seconds(10)))
      for (const std::string& m : modules) (void)(*admin)->exec("DROP SCHEMA IF EXISTS \"" + m + "\" CASCADE");
  }
};

ModuleSqlResult run_sql(PostgresModuleSql& store, const std::string& module, const std::string& sql,
                    std::vector<ModuleSqlValue> params = {}, bool write = false) {
  std::promise<ModuleSqlResult> promise;
  auto future = promise.get_future();
  store.query(module, sql, std::move(params), write, [&promise](ModuleSqlResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

ModuleSqlValue sql_text(std::string s) { return ModuleSqlValue{PARLEY_VALUE_TEXT, 0, std::move(s)}; }
ModuleSqlValue sql_int(int64_t i) { return ModuleSqlValue{PARLEY_VALUE_INT, i, {}}; }
ModuleSqlValue sql_blob(std::string s) { return ModuleSqlValue{PARLEY_VALUE_BLOB, 0, std::move(s)}; }

}  // namespace

TEST_CASE("module SQL on PostgreSQL: steps in the module's schema, versioned per module; values both ways") {
  ModuleSqlDb pg;
  const std::string a = pg.module("a");
  PostgresModuleSql store(pg.url, 100);
  std::vector<std::string> steps = {"CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT, n BIGINT, raw BYTEA, "
                                    "ok BOOLEAN)"};
  REQUIRE(store.migrate(a, steps));
  auto admin = pg_connect(pg.url);
  PgParam table = PgParam::text(a);
  auto where = admin->run("SELECT count(*)::bigint FROM information_schema.tables WHERE table_schema = $1 AND "
                          "table_name = 'notes'",
                          std::span(&table, 1));
  REQUIRE(where);
  CHECK(where->int64(0, 0) == 1);
  // A second step later: only it runs (the first would fail: the table exists).
  steps.push_back("CREATE INDEX notes_by_body ON notes (body)");
  REQUIRE(store.migrate(a, steps));
  PgParam component = PgParam::text("module:" + a);
  auto version = admin->run("SELECT version::bigint FROM parley_schema WHERE component = $1", std::span(&component, 1));
  REQUIRE(version);
  REQUIRE(version->rows() == 1);
  CHECK(version->int64(0, 0) == 2);
  // A database whose module schema is newer than the steps known is refused.
  auto older = store.migrate(a, {steps[0]});
  REQUIRE(!older);
  CHECK(older.error().find("newer") != std::string::npos);

  auto inserted = run_sql(store, a, "INSERT INTO notes (body, n, raw, ok) VALUES ($1, $2, $3, true)",
                      {sql_text("héllo"), sql_int(-42), sql_blob(std::string("\0\x01\xff", 3))}, true);
  REQUIRE_MESSAGE(inserted.error.empty(), inserted.error);
  CHECK(inserted.changes == 1);
  auto rows = run_sql(store, a, "SELECT id, body, n, raw, ok, NULL::text, 1.9::float8 FROM notes ORDER BY id");
  REQUIRE_MESSAGE(rows.error.empty(), rows.error);
  REQUIRE(rows.rows.size() == 1);
  CHECK(rows.columns == 7);
  const auto& r = rows.rows[0];
  CHECK(r[0].type == PARLEY_VALUE_INT);
  CHECK(r[0].integer == 1);
  CHECK(r[1].type == PARLEY_VALUE_TEXT);
  CHECK(r[1].bytes == "héllo");
  CHECK(r[2].integer == -42);
  CHECK(r[3].type == PARLEY_VALUE_BLOB);
  CHECK(r[3].bytes == std::string("\0\x01\xff", 3));
  CHECK(r[4].integer == 1);
  CHECK(r[5].type == PARLEY_VALUE_NULL);
  CHECK(r[6].integer == 1);
  // A statement's own error is the module's, not the store's.
  auto bad = run_sql(store, a, "SELECT nope FROM notes");
  CHECK(bad.error.find("nope") != std::string::npos);
  CHECK(run_sql(store, a, "SELECT count(*) FROM notes").error.empty());
  store.stop();
}

TEST_CASE("module SQL on PostgreSQL: the fence refuses another schema's tables, by any name, and DDL") {
  ModuleSqlDb pg;
  const std::string a = pg.module("a");
  const std::string b = pg.module("b");
  PostgresModuleSql store(pg.url, 100);
  REQUIRE(store.migrate(a, {"CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT)"}));
  REQUIRE(store.migrate(b, {"CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT)"}));
  REQUIRE(run_sql(store, a, "INSERT INTO notes (body) VALUES ($1)", {sql_text("a's")}, true).error.empty());
  REQUIRE(run_sql(store, b, "INSERT INTO notes (body) VALUES ($1)", {sql_text("b's")}, true).error.empty());
  // The same text, two modules: each its own table.
  CHECK(run_sql(store, a, "SELECT body FROM notes").rows.at(0).at(0).bytes == "a's");
  CHECK(run_sql(store, b, "SELECT body FROM notes").rows.at(0).at(0).bytes == "b's");

  auto refused = [&](const std::string& sql, bool write, const std::string& why) {
    auto r = run_sql(store, b, sql, {}, write);
    CHECK_MESSAGE(r.error.find(why) != std::string::npos, (sql + " -> " + r.error));
  };
  // Another module's table, qualified; in a subquery, a CTE, a write.
  refused("SELECT body FROM \"" + a + "\".notes", false, "does not belong to this module");
  refused("SELECT 1 WHERE EXISTS (SELECT 1 FROM \"" + a + "\".notes)", false, "does not belong");
  refused("WITH gone AS (DELETE FROM \"" + a + "\".notes RETURNING 1) SELECT count(*) FROM gone", true,
          "does not belong");
  refused("UPDATE \"" + a + "\".notes SET body = 'x'", true, "does not belong");
  // The server's tables: unqualified they are not on the module's path; qualified, refused.
  refused("SELECT * FROM parley_schema", false, "does not exist");
  refused("DELETE FROM " + pg.name + ".parley_schema", true, "does not belong");
  refused("SELECT relname FROM pg_catalog.pg_class", false, "does not belong");
  // DDL and session settings are not for run time.
  refused("DROP TABLE notes", true, "not allowed");
  refused("CREATE TABLE more (a int)", true, "not allowed");
  refused("SET search_path TO public", true, "not allowed");
  // Two statements in one call: refused by PostgreSQL's extended protocol.
  CHECK(!run_sql(store, b, "SELECT 1; SELECT 2").error.empty());
  // Nothing of a's was touched.
  auto left = run_sql(store, a, "SELECT body FROM notes");
  REQUIRE(left.rows.size() == 1);
  CHECK(left.rows[0][0].bytes == "a's");
  store.stop();
}

TEST_CASE("module SQL on PostgreSQL: writes in order, a failed one voids only itself; stopped, refused") {
  ModuleSqlDb pg;
  const std::string a = pg.module("a");
  PostgresModuleSql store(pg.url, 1000);
  REQUIRE(store.migrate(a, {"CREATE TABLE seq (n BIGINT PRIMARY KEY)"}));
  std::vector<std::future<ModuleSqlResult>> writes;
  for (int i = 0; i < 200; ++i) {
    auto promise = std::make_shared<std::promise<ModuleSqlResult>>();
    writes.push_back(promise->get_future());
    // 100 is written twice: the second fails (primary key), alone.
    int n = i == 101 ? 100 : i;
    store.query(a, "INSERT INTO seq (n) VALUES ($1)", {sql_int(n)}, true,
                [promise](ModuleSqlResult r) { promise->set_value(std::move(r)); });
  }
  for (int i = 0; i < 200; ++i) {
    auto r = writes[i].get();
    if (i == 101)
      CHECK(r.error.find("duplicate") != std::string::npos);
    else
      CHECK_MESSAGE(r.error.empty(), r.error);
  }
  auto count = run_sql(store, a, "SELECT count(*) FROM seq");
  CHECK(count.rows.at(0).at(0).integer == 199);
  // A module loaded later, after statements ran in a's schema: its bookkeeping is the
  // server's (the connection's own search_path), its table in its own schema.
  const std::string c = pg.module("c");
  REQUIRE(store.migrate(c, {"CREATE TABLE seq (n BIGINT PRIMARY KEY)"}));
  auto admin = pg_connect(pg.url);
  PgParam component = PgParam::text("module:" + c);
  auto recorded = admin->run("SELECT version::bigint FROM " + pg.name + ".parley_schema WHERE component = $1",
                             std::span(&component, 1));
  REQUIRE(recorded);
  CHECK(recorded->rows() == 1);
  CHECK(run_sql(store, c, "SELECT count(*) FROM seq").rows.at(0).at(0).integer == 0);
  CHECK(run_sql(store, a, "SELECT count(*) FROM seq").rows.at(0).at(0).integer == 199);
  store.stop();
  CHECK(run_sql(store, a, "SELECT 1").error.find("not running") != std::string::npos);
}

TEST_CASE("module SQL on PostgreSQL: a lost connection is reconnected; writes queued meanwhile are stored once") {
  ModuleSqlDb pg;
  const std::string a = pg.module("a");
  PostgresModuleSql store(pg.url, 1000);
  REQUIRE(store.migrate(a, {"CREATE TABLE seq (n BIGINT PRIMARY KEY)"}));
  std::vector<std::future<ModuleSqlResult>> writes;
  auto write = [&](int n) {
    auto promise = std::make_shared<std::promise<ModuleSqlResult>>();
    writes.push_back(promise->get_future());
    store.query(a, "INSERT INTO seq (n) VALUES ($1)", {sql_int(n)}, true,
                [promise](ModuleSqlResult r) { promise->set_value(std::move(r)); });
  };
  for (int i = 0; i < 50; ++i) write(i);
  auto admin = pg_connect(pg_base_url());
  PgParam name = PgParam::text(pg.name);
  REQUIRE(admin->run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                     std::span(&name, 1)));
  for (int i = 50; i < 100; ++i) write(i);
  std::vector<int> stored;
  for (int i = 0; i < 100; ++i)
    if (writes[i].get().error.empty()) stored.push_back(i);
  // Every write reported stored is, once (no duplicate: the primary key would have
  // failed a second run); a write may be reported failed only if its COMMIT's answer
  // was lost.
  auto rows = run_sql(store, a, "SELECT n FROM seq ORDER BY n");
  REQUIRE_MESSAGE(rows.error.empty(), rows.error);
  std::vector<int> there;
  for (const auto& row : rows.rows) there.push_back(static_cast<int>(row[0].integer));
  for (int i : stored) CHECK(std::find(there.begin(), there.end(), i) != there.end());
  CHECK(stored.size() >= 50);
  store.stop();
}
