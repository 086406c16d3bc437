// The credential cache in front of the account store (issue 11): logins of accounts
// seen recently while the database fails, never of others; forgotten on every change;
// bounded; a look-up racing a change never puts what it read before it.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "storage/caching_account_store.hpp"

using namespace parley::storage;
using parley::Result;

namespace {

ScramRecord scram_of(std::string mechanism, char fill) {
  ScramRecord r;
  r.mechanism = std::move(mechanism);
  r.salt = std::string(16, fill);
  r.iterations = 4096;
  r.stored_key = std::string(32, fill);
  r.server_key = std::string(32, fill);
  return r;
}

// An in-memory backend that fails every operation while `down`.
struct FailingBackend final : AccountBackend {
  bool down = false;
  std::map<std::string, std::vector<ScramRecord>> users;  // user -> records (one host)
  std::function<void()> during_get;                       // runs inside get_credentials
  Error error() const { return Error{0, "database away"}; }
  Result<bool, Error> create_user(std::string_view, std::string_view user,
                                  const std::vector<ScramRecord>& credentials) override {
    if (down) return parley::unexpected(error());
    return users.emplace(std::string(user), credentials).second;
  }
  Result<bool, Error> remove_user(std::string_view, std::string_view user) override {
    if (down) return parley::unexpected(error());
    return users.erase(std::string(user)) != 0;
  }
  Result<bool, Error> set_credentials(std::string_view, std::string_view user,
                                      const std::vector<ScramRecord>& credentials) override {
    if (down) return parley::unexpected(error());
    auto found = users.find(std::string(user));
    if (found == users.end()) return false;
    found->second = credentials;
    return true;
  }
  Result<std::optional<ScramRecord>, Error> get_credentials(std::string_view, std::string_view user,
                                                            std::string_view mechanism) override {
    if (down) return parley::unexpected(error());
    std::optional<ScramRecord> out;
    auto found = users.find(std::string(user));
    if (found != users.end())
      for (const auto& r : found->second)
        if (r.mechanism == mechanism) out = r;
    if (during_get) during_get();
    return out;
  }
  Result<bool, Error> user_exists(std::string_view, std::string_view user) override {
    if (down) return parley::unexpected(error());
    return users.count(std::string(user)) != 0;
  }
  Result<std::vector<std::string>, Error> list_users(std::string_view) override { return std::vector<std::string>{}; }
  Result<bool, Error> set_disabled(std::string_view, std::string_view user, bool disabled) override {
    if (down) return parley::unexpected(error());
    auto found = users.find(std::string(user));
    if (found == users.end()) return false;
    for (auto& r : found->second) r.account_disabled = disabled;
    return true;
  }
  Result<std::vector<std::string>, Error> list_disabled(std::string_view) override {
    return std::vector<std::string>{};
  }
};

std::optional<ScramRecord> login_with(AccountBackend& b, const char* user, const char* mechanism = "SCRAM-SHA-256") {
  auto got = b.get_credentials("example.org", user, mechanism);
  if (!got) return std::nullopt;
  REQUIRE(got->has_value());
  return **got;
}

bool login_fails(AccountBackend& b, const char* user, const char* mechanism = "SCRAM-SHA-256") {
  return !b.get_credentials("example.org", user, mechanism).has_value();
}

}  // namespace

TEST_CASE("credential cache: a login seen before works while the database fails, an unseen one does not") {
  FailingBackend db;
  CredentialCache cache(8);
  CachingAccountBackend b(db, cache);
  db.users["alice"] = {scram_of("SCRAM-SHA-1", 'a'), scram_of("SCRAM-SHA-256", 'A')};
  db.users["bob"] = {scram_of("SCRAM-SHA-256", 'b')};
  REQUIRE(login_with(b, "alice"));
  // No such user and no record for a mechanism are not cached.
  auto none = b.get_credentials("example.org", "nobody", "SCRAM-SHA-256");
  REQUIRE(none);
  CHECK(!none->has_value());
  CHECK(cache.size() == 1);

  db.down = true;
  auto cached = login_with(b, "alice");
  REQUIRE(cached);
  CHECK(cached->stored_key == std::string(32, 'A'));
  CHECK(login_fails(b, "alice", "SCRAM-SHA-1"));  // only the mechanism looked up is kept
  CHECK(login_fails(b, "bob"));                   // never logged in: the error stays
  CHECK(login_fails(b, "nobody"));
  CHECK(*b.user_exists("example.org", "alice"));
  CHECK(!b.user_exists("example.org", "bob"));

  db.down = false;  // back: the database answers again, not the cache
  db.users["alice"] = {scram_of("SCRAM-SHA-256", 'Z')};
  CHECK(login_with(b, "alice")->stored_key == std::string(32, 'Z'));
}

TEST_CASE("credential cache: every change forgets the account, also a change that failed") {
  FailingBackend db;
  CredentialCache cache(8);
  CachingAccountBackend b(db, cache);
  db.users["alice"] = {scram_of("SCRAM-SHA-256", 'a')};

  REQUIRE(login_with(b, "alice"));
  REQUIRE(*b.set_credentials("example.org", "alice", {scram_of("SCRAM-SHA-256", 'n')}));
  db.down = true;
  CHECK(login_fails(b, "alice"));  // the old password no longer logs in
  db.down = false;

  REQUIRE(login_with(b, "alice"));
  REQUIRE(*b.set_disabled("example.org", "alice", true));
  db.down = true;
  CHECK(login_fails(b, "alice"));
  db.down = false;
  // The disabled flag is part of what is kept.
  REQUIRE(login_with(b, "alice")->account_disabled);
  db.down = true;
  CHECK(login_with(b, "alice")->account_disabled);
  db.down = false;

  REQUIRE(*b.remove_user("example.org", "alice"));
  CHECK(cache.size() == 0);
  REQUIRE(*b.create_user("example.org", "alice", {scram_of("SCRAM-SHA-256", 'c')}));
  REQUIRE(login_with(b, "alice"));
  // A write that failed (a lost connection: it may have landed) forgets too.
  db.down = true;
  CHECK(!b.set_credentials("example.org", "alice", {scram_of("SCRAM-SHA-256", 'x')}));
  CHECK(login_fails(b, "alice"));
}

TEST_CASE("credential cache: a look-up that raced a change does not put what it read") {
  FailingBackend db;
  CredentialCache cache(8);
  CachingAccountBackend b(db, cache);
  db.users["alice"] = {scram_of("SCRAM-SHA-256", 'o')};
  // The change lands (and forgets) between the database's answer and the put.
  db.during_get = [&] { cache.forget("example.org", "alice"); };
  REQUIRE(login_with(b, "alice"));
  CHECK(cache.size() == 0);
  db.during_get = nullptr;
  REQUIRE(login_with(b, "alice"));
  CHECK(cache.size() == 1);
}

TEST_CASE("credential cache: bounded, least recently used evicted first; 0 keeps nothing") {
  FailingBackend db;
  CredentialCache cache(2);
  CachingAccountBackend b(db, cache);
  for (const char* u : {"a", "b", "c"}) db.users[u] = {scram_of("SCRAM-SHA-256", u[0])};
  REQUIRE(login_with(b, "a"));
  REQUIRE(login_with(b, "b"));
  db.down = true;
  REQUIRE(login_with(b, "a"));  // a is now the most recently used
  db.down = false;
  REQUIRE(login_with(b, "c"));  // evicts b
  CHECK(cache.size() == 2);
  db.down = true;
  CHECK(login_with(b, "a"));
  CHECK(login_with(b, "c"));
  CHECK(login_fails(b, "b"));

  db.down = false;
  CredentialCache none(0);
  CachingAccountBackend n(db, none);
  REQUIRE(login_with(n, "a"));
  CHECK(none.size() == 0);
}

TEST_CASE("credential cache: the store's threads share it (readers put and get, the writer forgets)") {
  // What the account store's reader threads and its writer do at once; run under TSan too.
  CredentialCache cache(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string user = "u" + std::to_string((i + t) % 8);
        if (t == 0) {
          cache.forget("example.org", user);
        } else {
          const uint64_t generation = cache.generation();
          cache.put("example.org", user, scram_of("SCRAM-SHA-256", static_cast<char>('a' + t)), generation);
          (void)cache.get("example.org", user, "SCRAM-SHA-256");
          (void)cache.contains("example.org", user);
        }
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK(cache.size() <= 4);
}
