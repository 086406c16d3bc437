#include "storage/user_store.hpp"

#include <array>

namespace parley::storage::user_store {

namespace {

constexpr std::array<std::string_view, 2> kSteps = {
    // 1: accounts, and their SCRAM records (deleted with the account).
    "CREATE TABLE users ("
    "  host TEXT NOT NULL,"
    "  username TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),"
    "  PRIMARY KEY (host, username)"
    ") WITHOUT ROWID;"
    "CREATE TABLE scram_credentials ("
    "  host TEXT NOT NULL,"
    "  username TEXT NOT NULL,"
    "  mechanism TEXT NOT NULL,"
    "  salt BLOB NOT NULL,"
    "  iterations INTEGER NOT NULL,"
    "  stored_key BLOB NOT NULL,"
    "  server_key BLOB NOT NULL,"
    "  PRIMARY KEY (host, username, mechanism),"
    "  FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE"
    ") WITHOUT ROWID;",
    // 2 (XEP-0133 disable-user): a disabled account keeps its data and cannot log in.
    "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;",
};

// Resets a cached statement when the function using it returns, so that it never keeps
// a read snapshot open on the connection.
class Using {
 public:
  explicit Using(Statement* s) : s_(s) {}
  ~Using() { s_->reset(); }
  Using(const Using&) = delete;
  Using& operator=(const Using&) = delete;
  Statement* operator->() const { return s_; }

 private:
  Statement* s_;
};

#define PARLEY_TRY(expr)                                      \
  do {                                                        \
    if (auto parley_r_ = (expr); !parley_r_)                  \
      return unexpected(std::move(parley_r_).error());        \
  } while (0)

Result<bool, Error> exists(Database& db, std::string_view host, std::string_view user) {
  auto st = db.prepare("SELECT 1 FROM users WHERE host = ?1 AND username = ?2");
  if (!st) return unexpected(std::move(st).error());
  Using s(*st);
  PARLEY_TRY(s->bind(1, host));
  PARLEY_TRY(s->bind(2, user));
  return s->step();
}

Result<void, Error> insert_credentials(Database& db, std::string_view host, std::string_view user,
                                       const std::vector<ScramRecord>& credentials) {
  for (const ScramRecord& c : credentials) {
    if (c.mechanism.empty()) return unexpected(Error{0, "a SCRAM record without a mechanism"});
    auto st = db.prepare(
        "INSERT INTO scram_credentials (host, username, mechanism, salt, iterations, stored_key, server_key)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st) return unexpected(std::move(st).error());
    Using s(*st);
    PARLEY_TRY(s->bind(1, host));
    PARLEY_TRY(s->bind(2, user));
    PARLEY_TRY(s->bind(3, c.mechanism));
    PARLEY_TRY(s->bind_blob(4, c.salt));
    PARLEY_TRY(s->bind(5, static_cast<int64_t>(c.iterations)));
    PARLEY_TRY(s->bind_blob(6, c.stored_key));
    PARLEY_TRY(s->bind_blob(7, c.server_key));
    PARLEY_TRY(s->run());
  }
  return {};
}

}  // namespace

std::span<const std::string_view> migrations() { return kSteps; }

Result<bool, Error> create_user(Database& db, std::string_view host, std::string_view user,
                                const std::vector<ScramRecord>& credentials) {
  auto txn = db.begin();
  if (!txn) return unexpected(std::move(txn).error());
  {
    auto st = db.prepare("INSERT INTO users (host, username) VALUES (?1, ?2) ON CONFLICT DO NOTHING");
    if (!st) return unexpected(std::move(st).error());
    Using s(*st);
    PARLEY_TRY(s->bind(1, host));
    PARLEY_TRY(s->bind(2, user));
    PARLEY_TRY(s->run());
  }
  if (db.changes() == 0) return false;  // the transaction rolls back, having done nothing
  PARLEY_TRY(insert_credentials(db, host, user, credentials));
  PARLEY_TRY(txn->commit());
  return true;
}

Result<bool, Error> remove_user(Database& db, std::string_view host, std::string_view user) {
  auto txn = db.begin();
  if (!txn) return unexpected(std::move(txn).error());
  // Explicit, so that the credentials go even on a connection with foreign keys off.
  auto creds = db.prepare("DELETE FROM scram_credentials WHERE host = ?1 AND username = ?2");
  if (!creds) return unexpected(std::move(creds).error());
  {
    Using s(*creds);
    PARLEY_TRY(s->bind(1, host));
    PARLEY_TRY(s->bind(2, user));
    PARLEY_TRY(s->run());
  }
  auto st = db.prepare("DELETE FROM users WHERE host = ?1 AND username = ?2");
  if (!st) return unexpected(std::move(st).error());
  {
    Using s(*st);
    PARLEY_TRY(s->bind(1, host));
    PARLEY_TRY(s->bind(2, user));
    PARLEY_TRY(s->run());
  }
  if (db.changes() == 0) return false;
  PARLEY_TRY(txn->commit());
  return true;
}

Result<bool, Error> set_credentials(Database& db, std::string_view host, std::string_view user,
                                    const std::vector<ScramRecord>& credentials) {
  auto txn = db.begin();
  if (!txn) return unexpected(std::move(txn).error());
  auto found = exists(db, host, user);
  if (!found) return unexpected(std::move(found).error());
  if (!*found) return false;
  auto st = db.prepare("DELETE FROM scram_credentials WHERE host = ?1 AND username = ?2");
  if (!st) return unexpected(std::move(st).error());
  {
    Using s(*st);
    PARLEY_TRY(s->bind(1, host));
    PARLEY_TRY(s->bind(2, user));
    PARLEY_TRY(s->run());
  }
  PARLEY_TRY(insert_credentials(db, host, user, credentials));
  PARLEY_TRY(txn->commit());
  return true;
}

Result<std::optional<ScramRecord>, Error> get_credentials(Database& db, std::string_view host,
                                                          std::string_view user, std::string_view mechanism) {
  auto st = db.prepare(
      "SELECT c.salt, c.iterations, c.stored_key, c.server_key, u.disabled FROM scram_credentials c"
      " JOIN users u ON u.host = c.host AND u.username = c.username"
      " WHERE c.host = ?1 AND c.username = ?2 AND c.mechanism = ?3");
  if (!st) return unexpected(std::move(st).error());
  Using s(*st);
  PARLEY_TRY(s->bind(1, host));
  PARLEY_TRY(s->bind(2, user));
  PARLEY_TRY(s->bind(3, mechanism));
  auto row = s->step();
  if (!row) return unexpected(std::move(row).error());
  if (!*row) return std::optional<ScramRecord>();
  ScramRecord r;
  r.mechanism = std::string(mechanism);
  r.salt = std::string(s->column_blob(0));
  int64_t iterations = s->column_int64(1);
  if (iterations <= 0 || iterations > UINT32_MAX) {
    return unexpected(Error{0, "corrupt SCRAM record: iteration count " + std::to_string(iterations)});
  }
  r.iterations = static_cast<uint32_t>(iterations);
  r.stored_key = std::string(s->column_blob(2));
  r.server_key = std::string(s->column_blob(3));
  r.account_disabled = s->column_int64(4) != 0;
  return std::optional<ScramRecord>(std::move(r));
}

Result<bool, Error> user_exists(Database& db, std::string_view host, std::string_view user) {
  return exists(db, host, user);
}

namespace {

// The usernames a one-parameter (host) query selects, in its order.
Result<std::vector<std::string>, Error> usernames(Database& db, const char* sql, std::string_view host) {
  auto st = db.prepare(sql);
  if (!st) return unexpected(std::move(st).error());
  Using s(*st);
  PARLEY_TRY(s->bind(1, host));
  std::vector<std::string> users;
  for (;;) {
    auto row = s->step();
    if (!row) return unexpected(std::move(row).error());
    if (!*row) break;
    users.emplace_back(s->column_text(0));
  }
  return users;
}

}  // namespace

Result<std::vector<std::string>, Error> list_users(Database& db, std::string_view host) {
  return usernames(db, "SELECT username FROM users WHERE host = ?1 ORDER BY username", host);
}

Result<bool, Error> set_disabled(Database& db, std::string_view host, std::string_view user, bool disabled) {
  auto st = db.prepare("UPDATE users SET disabled = ?3 WHERE host = ?1 AND username = ?2");
  if (!st) return unexpected(std::move(st).error());
  Using s(*st);
  PARLEY_TRY(s->bind(1, host));
  PARLEY_TRY(s->bind(2, user));
  PARLEY_TRY(s->bind(3, static_cast<int64_t>(disabled ? 1 : 0)));
  PARLEY_TRY(s->run());
  return db.changes() > 0;
}

Result<std::vector<std::string>, Error> list_disabled(Database& db, std::string_view host) {
  return usernames(db, "SELECT username FROM users WHERE host = ?1 AND disabled != 0 ORDER BY username", host);
}

}  // namespace parley::storage::user_store
