#include "storage/postgres_account_store.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

namespace parley::storage {

namespace postgres_accounts {

namespace {

constexpr std::array<std::string_view, 2> kMigrations = {
    // As the SQLite tables (user_store.cpp): accounts, and their SCRAM records, deleted
    // with the account.
    "CREATE TABLE users ("
    "  host TEXT NOT NULL,"
    "  username TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now())::BIGINT),"
    "  PRIMARY KEY (host, username));"
    "CREATE TABLE scram_credentials ("
    "  host TEXT NOT NULL,"
    "  username TEXT NOT NULL,"
    "  mechanism TEXT NOT NULL,"
    "  salt BYTEA NOT NULL,"
    "  iterations INTEGER NOT NULL,"
    "  stored_key BYTEA NOT NULL,"
    "  server_key BYTEA NOT NULL,"
    "  PRIMARY KEY (host, username, mechanism),"
    "  FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE);",
    // 2 (XEP-0133 disable-user): a disabled account keeps its data and cannot log in.
    "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;",
};

}  // namespace

std::span<const std::string_view> migrations() { return kMigrations; }

}  // namespace postgres_accounts

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr auto kStatementTimeout = std::chrono::seconds(10);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

Error to_error(const PgError& e) { return Error{0, e.message}; }

}  // namespace

// -- PgAccountBackend ------------------------------------------------------------------

Result<void, Error> PgAccountBackend::usable() const {
  if (conn_ == nullptr || conn_->broken()) return unexpected(Error{0, "the account database is unreachable"});
  return {};
}

template <class F>
auto PgAccountBackend::look_up(F&& f) -> decltype(f()) {
  auto r = f();
  if (!r && conn_ != nullptr && conn_->broken() && reconnect_) {
    conn_ = reconnect_();
    if (conn_ != nullptr && !conn_->broken()) r = f();
  }
  return r;
}

Result<bool, Error> PgAccountBackend::in_transaction(const std::function<Result<bool, Error>()>& body) {
  if (auto r = conn_->exec("BEGIN"); !r) return unexpected(to_error(r.error()));
  auto result = body();
  // A false result changed nothing: roll back (as on an error).
  if (!result || !*result) {
    (void)conn_->exec("ROLLBACK");
    return result;
  }
  if (auto r = conn_->exec("COMMIT"); !r) return unexpected(to_error(r.error()));
  return result;
}

Result<void, Error> PgAccountBackend::insert_credentials(std::string_view host, std::string_view user,
                                                         const std::vector<ScramRecord>& credentials) {
  static const std::string kInsert =
      "INSERT INTO scram_credentials (host, username, mechanism, salt, iterations, stored_key, server_key) "
      "VALUES ($1, $2, $3, $4, $5::integer, $6, $7)";
  for (const ScramRecord& c : credentials) {
    PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user)),
                        PgParam::text(c.mechanism),       PgParam::bytes(c.salt),
                        PgParam::integer(c.iterations),   PgParam::bytes(c.stored_key),
                        PgParam::bytes(c.server_key)};
    if (auto r = conn_->run(kInsert, params); !r) return unexpected(to_error(r.error()));
  }
  return {};
}

Result<bool, Error> PgAccountBackend::create_user(std::string_view host, std::string_view user,
                                                  const std::vector<ScramRecord>& credentials) {
  if (auto u = usable(); !u) return unexpected(u.error());
  return in_transaction([&]() -> Result<bool, Error> {
    PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user))};
    auto r = conn_->run("INSERT INTO users (host, username) VALUES ($1, $2) ON CONFLICT DO NOTHING", params);
    if (!r) return unexpected(to_error(r.error()));
    if (r->affected() == 0) return false;
    if (auto c = insert_credentials(host, user, credentials); !c) return unexpected(c.error());
    return true;
  });
}

Result<bool, Error> PgAccountBackend::remove_user(std::string_view host, std::string_view user) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user))};
  auto r = conn_->run("DELETE FROM users WHERE host = $1 AND username = $2", params);
  if (!r) return unexpected(to_error(r.error()));
  return r->affected() > 0;
}

Result<bool, Error> PgAccountBackend::set_credentials(std::string_view host, std::string_view user,
                                                      const std::vector<ScramRecord>& credentials) {
  if (auto u = usable(); !u) return unexpected(u.error());
  return in_transaction([&]() -> Result<bool, Error> {
    PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user))};
    // FOR UPDATE: a removal running beside it waits, and cannot leave records behind.
    auto found = conn_->run("SELECT 1 FROM users WHERE host = $1 AND username = $2 FOR UPDATE", params);
    if (!found) return unexpected(to_error(found.error()));
    if (found->rows() == 0) return false;
    auto del = conn_->run("DELETE FROM scram_credentials WHERE host = $1 AND username = $2", params);
    if (!del) return unexpected(to_error(del.error()));
    if (auto c = insert_credentials(host, user, credentials); !c) return unexpected(c.error());
    return true;
  });
}

Result<std::optional<ScramRecord>, Error> PgAccountBackend::get_credentials(std::string_view host,
                                                                            std::string_view user,
                                                                            std::string_view mechanism) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user)),
                      PgParam::text(std::string(mechanism))};
  auto r = look_up([&] {
    return conn_->run(
        "SELECT c.salt, c.iterations, c.stored_key, c.server_key, u.disabled FROM scram_credentials c "
        "JOIN users u ON u.host = c.host AND u.username = c.username "
        "WHERE c.host = $1 AND c.username = $2 AND c.mechanism = $3",
        params);
  });
  if (!r) return unexpected(to_error(r.error()));
  if (r->rows() == 0) return std::optional<ScramRecord>{};
  ScramRecord c;
  c.mechanism = std::string(mechanism);
  c.salt = std::string(r->bytes(0, 0));
  c.iterations = static_cast<uint32_t>(r->int64(0, 1));
  c.stored_key = std::string(r->bytes(0, 2));
  c.server_key = std::string(r->bytes(0, 3));
  c.account_disabled = r->int64(0, 4) != 0;
  return std::optional<ScramRecord>(std::move(c));
}

Result<bool, Error> PgAccountBackend::user_exists(std::string_view host, std::string_view user) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user))};
  auto r = look_up([&] { return conn_->run("SELECT 1 FROM users WHERE host = $1 AND username = $2", params); });
  if (!r) return unexpected(to_error(r.error()));
  return r->rows() > 0;
}

Result<std::vector<std::string>, Error> PgAccountBackend::list_users(std::string_view host) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam param = PgParam::text(std::string(host));
  // COLLATE "C": bytewise, as SQLite's BINARY (the order parleyctl list-users shows).
  auto r = look_up([&] {
    return conn_->run("SELECT username FROM users WHERE host = $1 ORDER BY username COLLATE \"C\"",
                      std::span(&param, 1));
  });
  if (!r) return unexpected(to_error(r.error()));
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->bytes(i, 0));
  return out;
}

Result<bool, Error> PgAccountBackend::set_disabled(std::string_view host, std::string_view user, bool disabled) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam params[] = {PgParam::text(std::string(host)), PgParam::text(std::string(user)),
                      PgParam::integer(disabled ? 1 : 0)};
  auto r = conn_->run("UPDATE users SET disabled = $3::integer WHERE host = $1 AND username = $2", params);
  if (!r) return unexpected(to_error(r.error()));
  return r->affected() > 0;
}

Result<std::vector<std::string>, Error> PgAccountBackend::list_disabled(std::string_view host) {
  if (auto u = usable(); !u) return unexpected(u.error());
  PgParam param = PgParam::text(std::string(host));
  auto r = look_up([&] {
    return conn_->run("SELECT username FROM users WHERE host = $1 AND disabled <> 0 ORDER BY username COLLATE \"C\"",
                      std::span(&param, 1));
  });
  if (!r) return unexpected(to_error(r.error()));
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->bytes(i, 0));
  return out;
}

// -- PostgresAccountStore ------------------------------------------------------------

PostgresAccountStore::PostgresAccountStore(std::string url, unsigned readers)
    : url_(std::move(url)), readers_(std::max(1u, readers)) {}

PostgresAccountStore::~PostgresAccountStore() { stop(); }

void PostgresAccountStore::log(std::string_view message) {
  if (!log_) return;
  try {
    log_(message);
  } catch (...) {
  }
}

Result<void, Error> PostgresAccountStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "account store already started"});
  for (unsigned i = 0; i < readers_ + 1; ++i) {
    auto conn = PgConnection::connect(url_, std::chrono::seconds(10));
    if (!conn) return unexpected(Error{0, conn.error().message});
    (*conn)->set_statement_timeout(kStatementTimeout);
    if (i == 0)
      if (auto r = pg_migrate(**conn, "accounts", postgres_accounts::migrations()); !r)
        return unexpected(Error{0, "migrating the accounts schema: " + r.error().message});
    auto worker = std::make_unique<Worker>();
    worker->conn = std::move(*conn);
    workers_.push_back(std::move(worker));
  }
  threads_.emplace_back([this] { run(writes_, *workers_[0]); });
  for (unsigned i = 1; i < workers_.size(); ++i) threads_.emplace_back([this, i] { run(reads_, *workers_[i]); });
  started_ = true;
  return {};
}

void PostgresAccountStore::push(Queue& queue, Job&& job) {
  {
    std::lock_guard lock(queue.mutex);
    if (!queue.stopping) {
      queue.jobs.push_back(std::move(job));
      queue.length.store(queue.jobs.size(), std::memory_order_relaxed);
      queue.ready.notify_one();
      return;
    }
  }
  // After stop: the job still runs, here, and every operation it makes fails.
  PgAccountBackend none(nullptr);
  try {
    job(none);
  } catch (...) {
  }
}

void PostgresAccountStore::ensure_connected(Worker& w) {
  if (w.conn && !w.conn->broken()) return;
  if (w.was_connected) {
    w.was_connected = false;
    log("account database connection lost: reconnecting");
  }
  const auto now = std::chrono::steady_clock::now();
  if (now < w.next_try) return;  // backing off: this job's operations fail at once
  w.conn.reset();
  auto conn = PgConnection::connect(url_, kConnectTimeout);
  if (!conn) {
    w.next_try = now + w.backoff;
    w.backoff = std::min(w.backoff * 2, std::chrono::milliseconds(kMaxBackoff));
    return;
  }
  (*conn)->set_statement_timeout(kStatementTimeout);
  w.conn = std::move(*conn);
  w.backoff = kFirstBackoff;
  w.was_connected = true;
  log("account database reconnected");
}

void PostgresAccountStore::run(Queue& queue, Worker& worker) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(queue.mutex);
      queue.ready.wait(lock, [&] { return queue.stopping || !queue.jobs.empty(); });
      if (queue.jobs.empty()) return;  // stopping, and drained
      job = std::move(queue.jobs.front());
      queue.jobs.pop_front();
      queue.length.store(queue.jobs.size(), std::memory_order_relaxed);
    }
    ensure_connected(worker);
    PgAccountBackend backend(worker.conn.get(), [this, &worker] {
      ensure_connected(worker);
      return worker.conn.get();
    });
    try {
      job(backend);
    } catch (...) {
      // Jobs must not throw; one that does loses only itself.
    }
  }
}

void PostgresAccountStore::stop() {
  std::lock_guard lock(lifecycle_);
  for (Queue* q : {&reads_, &writes_}) {
    std::lock_guard l(q->mutex);
    q->stopping = true;
    q->ready.notify_all();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  // Jobs queued but never run (the store never started): they run now, and fail.
  for (Queue* q : {&reads_, &writes_}) {
    std::deque<Job> left;
    {
      std::lock_guard l(q->mutex);
      left.swap(q->jobs);
      q->length.store(0, std::memory_order_relaxed);
    }
    PgAccountBackend none(nullptr);
    for (Job& job : left) {
      try {
        job(none);
      } catch (...) {
      }
    }
  }
  workers_.clear();
}

}  // namespace parley::storage
