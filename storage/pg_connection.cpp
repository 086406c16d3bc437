#include "storage/pg_connection.hpp"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <libpq-fe.h>

namespace parley::storage {

namespace {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

uint64_t read_be(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

// -- PgRows ---------------------------------------------------------------------------

PgRows::PgRows(pg_result* r) : r_(r) {}
PgRows::PgRows(PgRows&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
PgRows& PgRows::operator=(PgRows&& other) noexcept {
  if (this != &other) {
    if (r_) PQclear(r_);
    r_ = std::exchange(other.r_, nullptr);
  }
  return *this;
}
PgRows::~PgRows() {
  if (r_) PQclear(r_);
}

int PgRows::rows() const { return r_ ? PQntuples(r_) : 0; }
int PgRows::columns() const { return r_ ? PQnfields(r_) : 0; }
uint32_t PgRows::type(int col) const { return r_ ? static_cast<uint32_t>(PQftype(r_, col)) : 0; }
bool PgRows::is_null(int row, int col) const { return !r_ || PQgetisnull(r_, row, col); }
std::string_view PgRows::bytes(int row, int col) const {
  if (is_null(row, col)) return {};
  return {PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col))};
}
int64_t PgRows::int64(int row, int col) const {
  if (is_null(row, col)) return 0;
  const int n = PQgetlength(r_, row, col);
  // Binary format: big-endian two's complement, 8 bytes (int8) or 4 (int4).
  if (n == 8) return static_cast<int64_t>(read_be(PQgetvalue(r_, row, col), 8));
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(read_be(PQgetvalue(r_, row, col), 4)));
  return 0;
}
uint64_t PgRows::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return n && *n ? std::strtoull(n, nullptr, 10) : 0;
}

// -- PgConnection ---------------------------------------------------------------------

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

PgError PgConnection::lost(std::string what) {
  broken_ = true;
  std::string message = std::move(what);
  if (conn_) {
    std::string detail = trimmed(PQerrorMessage(conn_));
    if (!detail.empty()) message += ": " + detail;
  }
  return PgError{true, std::move(message), {}};
}

Result<void, PgError> PgConnection::wait(bool for_write, std::chrono::steady_clock::time_point deadline) {
  pollfd p{PQsocket(conn_), static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  if (p.fd < 0) return unexpected(lost("no socket"));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return unexpected(lost("the database did not answer in time"));
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) return unexpected(lost(std::string("poll: ") + std::strerror(errno)));
  }
}

Result<std::unique_ptr<PgConnection>, PgError> PgConnection::connect(const std::string& url,
                                                                    std::chrono::milliseconds timeout) {
  pg_conn* raw = PQconnectStart(url.c_str());
  if (raw == nullptr) return unexpected(PgError{true, "out of memory", {}});
  std::unique_ptr<PgConnection> conn(new PgConnection(raw));
  if (PQstatus(raw) == CONNECTION_BAD) return unexpected(conn->lost("cannot connect"));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (;;) {
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) return unexpected(conn->lost("cannot connect"));
    if (auto r = conn->wait(state == PGRES_POLLING_WRITING, deadline); !r) return unexpected(r.error());
    state = PQconnectPoll(raw);
  }
  if (PQsetnonblocking(raw, 1) != 0) return unexpected(conn->lost("cannot make the connection non-blocking"));
  conn->broken_ = false;
  return conn;
}

Result<PgRows, PgError> PgConnection::finish_statement() {
  const auto deadline = std::chrono::steady_clock::now() + statement_timeout_;
  // Send: a large parameter may not fit the socket's buffer at once.
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return unexpected(lost("cannot send"));
    if (auto r = wait(true, deadline); !r) return unexpected(r.error());
    if (PQconsumeInput(conn_) == 0) return unexpected(lost("cannot read"));
  }
  PgRows last;
  std::optional<PgError> failed;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (auto r = wait(false, deadline); !r) return unexpected(r.error());
      if (PQconsumeInput(conn_) == 0) return unexpected(lost("cannot read"));
    }
    pg_result* r = PQgetResult(conn_);
    if (r == nullptr) break;
    PgRows rows(r);
    switch (PQresultStatus(r)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        last = std::move(rows);
        break;
      default:
        if (!failed) {
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          failed = PgError{false, trimmed(PQresultErrorMessage(r)), state ? state : ""};
        }
        break;
    }
  }
  if (PQstatus(conn_) == CONNECTION_BAD) return unexpected(lost("connection lost"));
  if (failed) return unexpected(std::move(*failed));
  return last;
}

Result<void, PgError> PgConnection::exec(std::string_view sql) {
  if (broken_) return unexpected(PgError{true, "connection lost", {}});
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return unexpected(lost("cannot send"));
  auto r = finish_statement();
  if (!r) return unexpected(r.error());
  return {};
}

namespace {

struct ParamArrays {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  explicit ParamArrays(std::span<const PgParam> params)
      : values(params.size()), lengths(params.size()), formats(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].null ? nullptr : params[i].value.data();
      lengths[i] = static_cast<int>(params[i].value.size());
      formats[i] = params[i].binary ? 1 : 0;
    }
  }
};

}  // namespace

Result<PgRows, PgError> PgConnection::run_once(const std::string& sql, std::span<const PgParam> params) {
  if (broken_) return unexpected(PgError{true, "connection lost", {}});
  ParamArrays a(params);
  if (PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, a.values.data(),
                        a.lengths.data(), a.formats.data(), 0) == 0)
    return unexpected(lost("cannot send"));
  return finish_statement();
}

Result<PgRows, PgError> PgConnection::run(const std::string& sql, std::span<const PgParam> params, bool text_results) {
  if (broken_) return unexpected(PgError{true, "connection lost", {}});
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "p" + std::to_string(prepared_.size() + 1);
    if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr) == 0)
      return unexpected(lost("cannot send"));
    if (auto r = finish_statement(); !r) return unexpected(r.error());
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  ParamArrays a(params);
  if (PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(params.size()), a.values.data(),
                          a.lengths.data(), a.formats.data(), text_results ? 0 : 1) == 0)
    return unexpected(lost("cannot send"));
  return finish_statement();
}

Result<void, PgError> pg_migrate(PgConnection& conn, std::string_view component,
                                 std::span<const std::string_view> steps, std::string_view search_path) {
  auto rollback = [&conn](PgError e) -> Result<void, PgError> {
    if (!e.broken) (void)conn.exec("ROLLBACK");
    return unexpected(std::move(e));
  };
  if (auto r = conn.exec("BEGIN"); !r) return r;
  // One migration at a time across servers: a transaction-scoped advisory lock (any
  // constant the other servers use too).
  if (auto r = conn.exec("SELECT pg_advisory_xact_lock(70617266);"
                         "CREATE TABLE IF NOT EXISTS parley_schema (component TEXT PRIMARY KEY, "
                         "version INTEGER NOT NULL)");
      !r)
    return rollback(r.error());
  PgParam name = PgParam::text(std::string(component));
  auto row = conn.run("SELECT version FROM parley_schema WHERE component = $1", std::span(&name, 1));
  if (!row) return rollback(row.error());
  int64_t version = row->rows() ? row->int64(0, 0) : 0;
  if (version > static_cast<int64_t>(steps.size()))
    return rollback(PgError{false, "the database's " + std::string(component) + " schema is version " +
                                       std::to_string(version) + ", newer than this Parley knows (" +
                                       std::to_string(steps.size()) + ")",
                            {}});
  const bool pending = static_cast<size_t>(version) < steps.size();
  if (pending && !search_path.empty()) {
    std::string set = "CREATE SCHEMA IF NOT EXISTS " + std::string(search_path) + "; SET LOCAL search_path TO " +
                      std::string(search_path);
    if (auto r = conn.exec(set); !r) return rollback(r.error());
  }
  for (size_t i = static_cast<size_t>(version); i < steps.size(); ++i)
    if (auto r = conn.exec(steps[i]); !r) return rollback(r.error());
  if (pending && !search_path.empty())
    if (auto r = conn.exec("SET LOCAL search_path TO DEFAULT"); !r) return rollback(r.error());
  if (pending) {
    PgParam params[] = {name, PgParam::integer(static_cast<int64_t>(steps.size()))};
    auto up = conn.run(
        "INSERT INTO parley_schema (component, version) VALUES ($1, $2::integer) "
        "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
        params);
    if (!up) return rollback(up.error());
  }
  if (auto r = conn.exec("COMMIT"); !r) return r;
  return {};
}

}  // namespace parley::storage
