#include "core/control/account_commands.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>

#include "control_test_util.hpp"
#include "core/control/control_server.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/storage_pool.hpp"
#include "storage/user_store.hpp"

using namespace parley::control;
using namespace parley::test;
using parley::storage::Database;
using parley::storage::ScramRecord;
namespace us = parley::storage::user_store;
namespace sasl = parley::sasl;

namespace {

parley::config::Config test_config(const TempDir& dir) {
  parley::config::Config c;
  c.file = "test.yml";
  c.hosts = {"localhost", "example.org"};
  c.storage.path = dir.file("accounts.db");
  c.control_socket = dir.file("ctl.sock");
  return c;
}

std::unique_ptr<Database> open_db(const parley::config::Config& config) {
  auto db = Database::open(config.storage.path, Database::Mode::read_write);
  REQUIRE(db.has_value());
  REQUIRE(parley::storage::migrate_builtin(**db).has_value());
  return std::move(*db);
}

ScramRecord stored(Database& db, std::string_view host, std::string_view user, std::string_view mechanism) {
  auto r = us::get_credentials(db, host, user, mechanism);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  return **r;
}

bool password_matches(const ScramRecord& r, std::string_view password) {
  sasl::ScramCredentials c;
  c.hash = r.mechanism == "SCRAM-SHA-1" ? sasl::Hash::sha1 : sasl::Hash::sha256;
  c.salt = r.salt;
  c.iterations = r.iterations;
  c.stored_key = r.stored_key;
  c.server_key = r.server_key;
  return sasl::verify_password(c, password);
}

std::string ok_text(const AccountResult& r) {
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  return *r;
}

std::string error_text(const AccountResult& r) {
  REQUIRE_MESSAGE(!r.has_value(), (r ? *r : ""));
  return r.error();
}

}  // namespace

TEST_CASE("register stores SCRAM-SHA-1 and SCRAM-SHA-256 records, never the password") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);
  CHECK(ok_text(register_account(*db, config, "alice", "localhost", "s3cret pass")) ==
        "User alice@localhost successfully registered");

  ScramRecord sha1 = stored(*db, "localhost", "alice", "SCRAM-SHA-1");
  ScramRecord sha256 = stored(*db, "localhost", "alice", "SCRAM-SHA-256");
  for (const ScramRecord* r : {&sha1, &sha256}) {
    CHECK(r->salt.size() == kScramSaltBytes);
    CHECK(r->iterations == kScramIterations);
    CHECK(password_matches(*r, "s3cret pass"));
    CHECK_FALSE(password_matches(*r, "s3cret pasS"));
  }
  CHECK(sha1.stored_key.size() == 20);
  CHECK(sha256.stored_key.size() == 32);
  CHECK(sha1.salt != sha256.salt);

  // The password appears nowhere in the file.
  db.reset();
  std::ifstream file(config.storage.path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::ifstream wal(config.storage.path + "-wal", std::ios::binary);
  bytes.append((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
  CHECK(bytes.find("s3cret") == std::string::npos);
}

TEST_CASE("register normalizes and validates") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);

  CHECK(ok_text(register_account(*db, config, "Alice", "LocalHost", "pw")) ==
        "User alice@localhost successfully registered");
  CHECK(error_text(register_account(*db, config, "ALICE", "localhost", "other")) ==
        "User alice@localhost already registered");
  CHECK(password_matches(stored(*db, "localhost", "alice", "SCRAM-SHA-256"), "pw"));  // untouched

  CHECK(error_text(register_account(*db, config, "a@b", "localhost", "pw")).find("Invalid user name 'a@b'") == 0);
  CHECK(error_text(register_account(*db, config, "", "localhost", "pw")).find("Invalid user name") == 0);
  CHECK(error_text(register_account(*db, config, "bob", "elsewhere.net", "pw")).find("Unknown host 'elsewhere.net'") ==
        0);
  CHECK(error_text(register_account(*db, config, "bob", "bad host", "pw")).find("Invalid host") == 0);
  CHECK(error_text(register_account(*db, config, "bob", "localhost", "")) == "Empty password");
  CHECK(error_text(register_account(*db, config, "bob", "localhost", "a\x07" "b")).find("Invalid password") == 0);
  auto users = us::list_users(*db, "localhost");
  REQUIRE(users.has_value());
  CHECK(*users == std::vector<std::string>{"alice"});

  // The same name on another host is another account.
  CHECK(register_account(*db, config, "alice", "example.org", "pw").has_value());
}

TEST_CASE("passwd and unregister") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);
  REQUIRE(register_account(*db, config, "alice", "localhost", "old").has_value());

  CHECK(ok_text(change_password(*db, config, "alice", "localhost", "new")) == "Password of user alice@localhost changed");
  for (const char* m : {"SCRAM-SHA-1", "SCRAM-SHA-256"}) {
    ScramRecord r = stored(*db, "localhost", "alice", m);
    CHECK(password_matches(r, "new"));
    CHECK_FALSE(password_matches(r, "old"));
  }
  CHECK(error_text(change_password(*db, config, "bob", "localhost", "x")) == "User bob@localhost does not exist");
  CHECK(error_text(change_password(*db, config, "alice", "localhost", "")) == "Empty password");

  CHECK(ok_text(unregister_account(*db, config, "Alice", "localhost")) == "User alice@localhost successfully unregistered");
  CHECK(error_text(unregister_account(*db, config, "alice", "localhost")) == "User alice@localhost does not exist");
  auto creds = us::get_credentials(*db, "localhost", "alice", "SCRAM-SHA-1");
  REQUIRE(creds.has_value());
  CHECK_FALSE(creds->has_value());
}

TEST_CASE("check-password: success or an empty error, nothing else") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);
  REQUIRE(register_account(*db, config, "alice", "localhost", "right").has_value());
  CHECK(ok_text(check_password(*db, config, "Alice", "localhost", "right")).empty());  // the name nodeprep'd
  CHECK(error_text(check_password(*db, config, "alice", "localhost", "wrong")).empty());
  CHECK(error_text(check_password(*db, config, "alice", "localhost", "")).empty());
  CHECK(error_text(check_password(*db, config, "bob", "localhost", "right")).empty());
  CHECK(error_text(check_password(*db, config, "alice", "nowhere.test", "right")).empty());
  CHECK(run_account_command(*db, config, {"check-password", "alice", "localhost", "right"}).has_value());
  CHECK_FALSE(run_account_command(*db, config, {"check-password", "alice", "localhost", "wrong"}).has_value());
  REQUIRE(change_password(*db, config, "alice", "localhost", "new").has_value());
  CHECK_FALSE(check_password(*db, config, "alice", "localhost", "right").has_value());
  CHECK(check_password(*db, config, "alice", "localhost", "new").has_value());
}

TEST_CASE("list-users and the argv dispatcher") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);
  CHECK(ok_text(run_account_command(*db, config, {"list-users", "localhost"})).empty());
  for (const char* u : {"carol", "alice", "bob"}) {
    REQUIRE(run_account_command(*db, config, {"register", u, "localhost", "pw"}).has_value());
  }
  CHECK(ok_text(run_account_command(*db, config, {"list-users", "localhost"})) == "alice\nbob\ncarol\n");
  CHECK(ok_text(run_account_command(*db, config, {"list-users", "example.org"})).empty());
  CHECK(error_text(run_account_command(*db, config, {"list-users", "nowhere.test"})).find("Unknown host") == 0);
  CHECK(error_text(run_account_command(*db, config, {"register", "dave", "localhost"})) ==
        "usage: register USER HOST PASSWORD");
  CHECK(error_text(run_account_command(*db, config, {"frob"})).find("Unknown account command") == 0);
  CHECK(error_text(run_account_command(*db, config, {})).find("Unknown account command") == 0);
  CHECK(find_account_command("passwd") != nullptr);
  CHECK(find_account_command("status") == nullptr);
  CHECK(account_command_specs().size() == 7);
}

TEST_CASE("ban-account and unban-account: the disabled flag, by the argv dispatcher") {
  TempDir dir;
  auto config = test_config(dir);
  auto db = open_db(config);
  REQUIRE(run_account_command(*db, config, {"register", "alice", "localhost", "pw"}).has_value());
  CHECK(ok_text(run_account_command(*db, config, {"ban-account", "Alice", "localhost"})) ==
        "User alice@localhost disabled");
  CHECK(stored(*db, "localhost", "alice", "SCRAM-SHA-256").account_disabled);
  CHECK(error_text(run_account_command(*db, config, {"ban-account", "bob", "localhost"})) ==
        "User bob@localhost does not exist");
  CHECK(error_text(run_account_command(*db, config, {"ban-account", "alice", "nowhere.test"})).find("Unknown host") ==
        0);
  CHECK(error_text(run_account_command(*db, config, {"unban-account", "alice"})) == "usage: unban-account USER HOST");
  CHECK(ok_text(run_account_command(*db, config, {"unban-account", "alice", "localhost"})) ==
        "User alice@localhost re-enabled");
  CHECK_FALSE(stored(*db, "localhost", "alice", "SCRAM-SHA-256").account_disabled);
}

namespace {

// The core's post_to_loop, in small: a locked queue drained by a uv_async on the loop.
class LoopPoster {
 public:
  explicit LoopPoster(uv_loop_t* loop) {
    uv_async_init(loop, &async_, [](uv_async_t* a) { static_cast<LoopPoster*>(a->data)->drain(); });
    async_.data = this;
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr); }
  std::function<void(std::function<void()>)> function() {
    return [this](std::function<void()> f) {
      {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(f));
      }
      uv_async_send(&async_);
    };
  }
  std::thread::id loop_thread;

 private:
  void drain() {
    loop_thread = std::this_thread::get_id();
    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard lock(mutex_);
      jobs.swap(queue_);
    }
    for (auto& j : jobs) j();
  }
  uv_async_t async_;
  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
};

}  // namespace

TEST_CASE("the account commands through the control socket and the storage pool") {
  TempDir dir;
  auto config = test_config(dir);
  Loop loop;
  parley::storage::StoragePool pool(config.storage.path, 2);
  REQUIRE(pool.start().has_value());
  LoopPoster poster(loop.get());
  ControlServer server(loop.get(), config.control_socket);
  parley::storage::SqliteAccountStore accounts(pool);
  add_account_commands(server, accounts, config, poster.function());
  REQUIRE(server.start().has_value());
  const std::string& path = config.control_socket;

  CHECK(ask(loop, path, {"register", "alice", "localhost", "pw, with: comma"}) ==
        "ok\nUser alice@localhost successfully registered\n");
  CHECK(ask(loop, path, {"register", "alice", "localhost", "x"}) == "error\nUser alice@localhost already registered\n");
  CHECK(ask(loop, path, {"register", "bob", "localhost", "x"}).rfind("ok\n", 0) == 0);
  CHECK(ask(loop, path, {"list-users", "localhost"}) == "ok\nalice\nbob\n");
  CHECK(ask(loop, path, {"passwd", "bob", "localhost", "y"}) == "ok\nPassword of user bob@localhost changed\n");
  CHECK(ask(loop, path, {"unregister", "bob", "localhost"}) == "ok\nUser bob@localhost successfully unregistered\n");
  CHECK(ask(loop, path, {"unregister", "bob", "localhost"}) == "error\nUser bob@localhost does not exist\n");
  CHECK(ask(loop, path, {"register", "carol"}) == "error\nusage: register USER HOST PASSWORD\n");
  std::string help = ask(loop, path, {"help"});
  for (const char* c : {"register", "unregister", "passwd", "list-users"}) CHECK(help.find(c) != std::string::npos);
  CHECK(poster.loop_thread == std::this_thread::get_id());  // replies went out on the loop thread

  server.close();
  poster.close();
  pool.stop();

  // What the server wrote is what parleyctl would find offline.
  auto db = open_db(config);
  CHECK(password_matches(stored(*db, "localhost", "alice", "SCRAM-SHA-256"), "pw, with: comma"));
}
