#include "storage/postgres_module_sql.hpp"

#include <cstdlib>
#include <future>
#include <optional>
#include <utility>

#include <libpq-fe.h>

namespace parley::storage {

namespace {

// Type OIDs (pg_type.h's; libpq does not export them).
constexpr uint32_t kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kFloat4 = 700,
                   kFloat8 = 701, kNumeric = 1700;

std::vector<PgParam> to_params(const std::vector<ModuleSqlValue>& values) {
  std::vector<PgParam> params;
  params.reserve(values.size());
  for (const ModuleSqlValue& v : values) {
    switch (v.type) {
      case PARLEY_VALUE_INT: params.push_back(PgParam::integer(v.integer)); break;
      case PARLEY_VALUE_TEXT: params.push_back(PgParam::text(v.bytes)); break;
      case PARLEY_VALUE_BLOB: params.push_back(PgParam::bytes(v.bytes)); break;
      default: params.push_back(PgParam{{}, false, true});
    }
  }
  return params;
}

// A column in text format as the module sees it: integers (and booleans, and numbers
// truncated, as SQLite's side does) as INT, bytea as BLOB, anything else as its text.
ModuleSqlValue to_value(const PgRows& rows, int row, int col) {
  ModuleSqlValue v;
  if (rows.is_null(row, col)) return v;
  std::string_view text = rows.bytes(row, col);
  switch (rows.type(col)) {
    case kBool:
      v.type = PARLEY_VALUE_INT;
      v.integer = text == "t" ? 1 : 0;
      break;
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      v.type = PARLEY_VALUE_INT;
      v.integer = std::strtoll(std::string(text).c_str(), nullptr, 10);
      break;
    case kFloat4:
    case kFloat8:
    case kNumeric:
      v.type = PARLEY_VALUE_INT;
      v.integer = static_cast<int64_t>(std::strtod(std::string(text).c_str(), nullptr));
      break;
    case kBytea: {
      v.type = PARLEY_VALUE_BLOB;
      size_t length = 0;
      std::string escaped(text);
      unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(escaped.c_str()), &length);
      if (raw != nullptr) {
        v.bytes.assign(reinterpret_cast<const char*>(raw), length);
        PQfreemem(raw);
      }
      break;
    }
    default:
      v.type = PARLEY_VALUE_TEXT;
      v.bytes = std::string(text);
  }
  return v;
}

}  // namespace

PostgresModuleSql::PostgresModuleSql(std::string url, size_t max_queue)
    : link_(std::move(url), "module SQL"), queue_(max_queue) {}

PostgresModuleSql::~PostgresModuleSql() { stop(); }

Result<void, std::string> PostgresModuleSql::start() {
  std::lock_guard lock(lifecycle_);
  if (started_.load()) return {};
  if (stopped_) return unexpected(std::string("the module SQL store stopped"));
  if (auto c = link_.connect(); !c) return unexpected(c.error().message);
  thread_ = std::thread([this] {
    pg_store_run(
        queue_, link_, kMaxBatch, [](const Op& op) { return op.is_read(); },
        [](Op& op) { op.fail("the module SQL database is unreachable"); },
        [this](OpBatch<Op>& batch) { run_batch(batch); });
  });
  started_.store(true);
  return {};
}

Result<void, std::string> PostgresModuleSql::migrate(const std::string& module, const std::vector<std::string>& steps) {
  if (auto s = start(); !s) return unexpected("cannot reach PostgreSQL (storage.url): " + s.error());
  std::promise<std::string> promise;
  auto future = promise.get_future();
  Op op;
  op.kind = Op::Kind::migrate;
  op.module = module;
  op.steps = steps;
  op.done = [&promise](ModuleSqlResult r) { promise.set_value(std::move(r.error)); };
  if (!queue_.push(std::move(op), true)) return unexpected(std::string("the module SQL store is stopping or full"));
  std::string error = future.get();
  if (!error.empty()) return unexpected(std::move(error));
  return {};
}

void PostgresModuleSql::query(std::string module, std::string sql, std::vector<ModuleSqlValue> params, bool write,
                              Done done) {
  Op op;
  op.kind = write ? Op::Kind::write : Op::Kind::read;
  op.module = std::move(module);
  op.sql = std::move(sql);
  op.params = std::move(params);
  op.done = std::move(done);
  if (!started_.load()) return op.fail("the module SQL store is not running");
  // A read also wakes a thread waiting to reconnect: it fails at once, not after the back-off.
  const bool read = op.is_read();
  if (!queue_.push(std::move(op), read))
    op.fail("the module SQL store is stopping or its queue is full (limits.max_module_sql_queue)");
}

void PostgresModuleSql::requeue(OpBatch<Op>& batch, size_t from) {
  search_path_.clear();  // the transaction that set it is gone
  auto failed = queue_.put_back(
      batch, from, [](const Op& op) { return op.is_read(); }, [](Op&) {});
  for (Op& op : failed) op.fail("the module SQL database connection was lost");
}

void PostgresModuleSql::run_batch(OpBatch<Op>& batch) {
  size_t i = 0;
  while (i < batch.size()) {
    if (batch[i].kind == Op::Kind::migrate) {
      run_migration(batch[i]);
      ++i;
      if (!link_.usable()) {
        requeue(batch, i);
        return;
      }
      continue;
    }
    size_t end = i;
    while (end < batch.size() && batch[end].kind != Op::Kind::migrate) ++end;
    if (!run_statements(batch, i, end)) {
      requeue(batch, i);
      return;
    }
    i = end;
  }
}

void PostgresModuleSql::run_migration(Op& op) {
  PgConnection& db = link_.db();
  // The bookkeeping (parley_schema) is the server's: with the connection's default path.
  if (!search_path_.empty()) {
    if (auto r = db.exec("SET search_path TO DEFAULT"); !r) {
      if (!db.broken()) link_.drop();
      return op.fail("cannot migrate the schema of " + op.module + ": " + r.error().message);
    }
    search_path_.clear();
  }
  std::vector<std::string_view> steps(op.steps.begin(), op.steps.end());
  auto migrated = pg_migrate(db, "module:" + op.module, steps, module_sql::quoted_schema(op.module));
  if (!migrated) {
    if (migrated.error().broken && !db.broken()) link_.drop();
    return op.fail(migrated.error().message);
  }
  ModuleSqlResult ok;
  if (op.done) op.done(std::move(ok));
}

ModuleSqlResult PostgresModuleSql::run_statement(Op& op, std::optional<PgError>& broken) {
  ModuleSqlResult result;
  PgConnection& db = link_.db();
  std::vector<PgParam> params = to_params(op.params);
  std::string key = op.module + '\0' + op.sql;
  if (!checked_.count(key)) {
    if (!module_sql::is_runtime_statement(op.sql)) {
      result.error =
          "statement not allowed for modules on PostgreSQL: only SELECT, INSERT, UPDATE, DELETE, WITH and VALUES "
          "(a module's tables are made by its schema steps)";
      return result;
    }
    // The plan names every relation the statement would read or write, with its schema,
    // whatever the text says (qualified names, CTEs, subqueries, views expanded).
    auto plan = db.run_once("EXPLAIN (VERBOSE, FORMAT JSON) " + op.sql, params);
    if (!plan) {
      if (plan.error().broken) broken = plan.error();
      result.error = plan.error().message;
      return result;
    }
    auto relations = module_sql::plan_relations(plan->rows() > 0 ? plan->bytes(0, 0) : std::string_view("[]"));
    if (!relations) {
      result.error = relations.error();
      return result;
    }
    for (const auto& [schema, relation] : *relations) {
      if (schema == op.module) continue;
      result.error = "table '" + schema + "." + relation + "' does not belong to this module (its tables are in schema '" +
                     op.module + "')";
      return result;
    }
    if (checked_.size() >= kMaxChecked) checked_.clear();
    checked_.insert(std::move(key));
  }
  // Tagged with the module: the connection prepares each text once, and a module's
  // statement is never another's (they resolve names in different schemas).
  auto rows = db.run("/*" + op.module + "*/ " + op.sql, params, true);
  if (!rows) {
    if (rows.error().broken) broken = rows.error();
    result.error = rows.error().message;
    return result;
  }
  result.columns = static_cast<size_t>(rows->columns());
  for (int r = 0; r < rows->rows(); ++r) {
    std::vector<ModuleSqlValue> values;
    values.reserve(result.columns);
    for (int c = 0; c < rows->columns(); ++c) values.push_back(to_value(*rows, r, c));
    result.rows.push_back(std::move(values));
  }
  result.changes = static_cast<int64_t>(rows->affected());
  return result;
}

bool PostgresModuleSql::run_statements(OpBatch<Op>& batch, size_t from, size_t to) {
  PgConnection& db = link_.db();
  auto give_up = [&] {
    if (!db.broken()) link_.drop();  // a connection that cannot run these is of no use
    return false;
  };
  if (!db.exec("BEGIN")) return give_up();
  std::vector<ModuleSqlResult> results(to - from);
  for (size_t i = from; i < to; ++i) {
    Op& op = batch[i];
    // The module's schema first (a session setting, outside the op's savepoint: kept by
    // the COMMIT, undone with the transaction, when search_path_ is forgotten).
    if (search_path_ != op.module) {
      if (!db.exec("SET search_path TO " + module_sql::quoted_schema(op.module))) return give_up();
      search_path_ = op.module;
    }
    if (!db.exec("SAVEPOINT module_op")) return give_up();
    std::optional<PgError> broken;
    results[i - from] = run_statement(op, broken);
    if (broken || db.broken()) return give_up();
    if (!db.exec(results[i - from].error.empty() ? "RELEASE SAVEPOINT module_op" : "ROLLBACK TO SAVEPOINT module_op"))
      return give_up();
  }
  auto committed = db.exec("COMMIT");
  if (!committed) {
    search_path_.clear();
    // Lost during the COMMIT: it may have landed or not, and writes are not idempotent:
    // report them failed rather than store them twice or report them stored.
    std::string why = committed.error().broken
                          ? "the database connection was lost during the commit (the write may or may not be "
                            "stored)"
                          : committed.error().message;
    for (size_t i = from; i < to; ++i) batch[i].fail(why);
    return true;
  }
  for (size_t i = from; i < to; ++i)
    if (batch[i].done) batch[i].done(std::move(results[i - from]));
  return true;
}

void PostgresModuleSql::stop() {
  std::lock_guard lock(lifecycle_);
  stopped_ = true;
  queue_.stop(stop_grace_);
  if (thread_.joinable()) thread_.join();
  for (Op& op : queue_.drain()) op.fail("the module SQL store stopped");
  link_.close();
  started_.store(false);
}

}  // namespace parley::storage
