// ABI 1.7: which backend's steps a module declared (host_api_module_sql.cpp), and the
// malformed declarations refused at load.
#include <doctest/doctest.h>

#include "core/modules/host_api_module_sql.hpp"

using parley::ModuleLibrary;
using parley::host_module_sql::postgres_steps;

namespace {

const char* const kSteps[] = {"CREATE TABLE a (x int)", "CREATE TABLE b (y int)"};

// A library whose def is `def` (not dlopen()ed: the destructor closes no handle).
ModuleLibrary library(const parley_module_def& def) {
  ModuleLibrary lib;
  lib.name = "mod_x";
  lib.def = &def;
  return lib;
}

}  // namespace

TEST_CASE("module SQL backend: PostgreSQL's steps as declared; none for an older def or none declared") {
  parley_backend_schema pg{PARLEY_BACKEND_POSTGRESQL, kSteps, 2};
  parley_module_def def{};
  def.size = sizeof(def);
  def.backend_schemas = &pg;
  def.backend_schema_count = 1;
  auto steps = postgres_steps(library(def));
  REQUIRE(steps);
  CHECK(*steps == std::vector<std::string>{kSteps[0], kSteps[1]});

  // Built for 1.6: the def ends before backend_schemas, whatever lies beyond it.
  parley_module_def old = def;
  old.size = offsetof(parley_module_def, backend_schemas);
  auto none = postgres_steps(library(old));
  REQUIRE(none);
  CHECK(none->empty());
  def.backend_schemas = nullptr;
  CHECK(postgres_steps(library(def))->empty());
}

TEST_CASE("module SQL backend: SQLite in backend_schemas, an unknown backend, one twice, an empty step: refused") {
  parley_module_def def{};
  def.size = sizeof(def);
  auto refused = [&](std::vector<parley_backend_schema> schemas, const char* why) {
    def.backend_schemas = schemas.data();
    def.backend_schema_count = schemas.size();
    auto r = postgres_steps(library(def));
    REQUIRE(!r);
    CHECK_MESSAGE(r.error().find(why) != std::string::npos, r.error());
  };
  refused({{PARLEY_BACKEND_SQLITE, kSteps, 1}}, "SQLite");
  refused({{7, kSteps, 1}}, "unknown backend");
  refused({{PARLEY_BACKEND_POSTGRESQL, kSteps, 1}, {PARLEY_BACKEND_POSTGRESQL, kSteps, 2}}, "twice");
  const char* const empty[] = {"CREATE TABLE a (x int)", ""};
  refused({{PARLEY_BACKEND_POSTGRESQL, empty, 2}}, "empty");
  refused({{PARLEY_BACKEND_POSTGRESQL, nullptr, 1}}, "missing");
}
