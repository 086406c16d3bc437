#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "core/session/session_table.hpp"

using namespace parley;

TEST_CASE("session ids carry their loop") {
  SessionId id = make_session_id(3, 12345);
  CHECK(loop_of(id) == 3);
  CHECK(make_session_id(0, 1) != make_session_id(1, 1));
}

TEST_CASE("session table: bind, conflict, unbind only by owner") {
  SessionTable table;
  auto first = table.bind("alice@localhost", "phone", 1, 10);
  CHECK(first.ok);
  CHECK(first.replaced == 0);
  CHECK(table.count_of("alice@localhost") == 1);
  CHECK(table.bind("alice@localhost", "laptop", 2, 10).ok);
  CHECK(table.sessions_of("alice@localhost").size() == 2);
  CHECK(table.count_of("alice@localhost") == 2);
  CHECK(table.count_of("bob@localhost") == 0);

  // Same full JID: the new session takes the entry, the old one is reported.
  auto again = table.bind("alice@localhost", "phone", 3, 10);
  CHECK(again.ok);
  CHECK(again.replaced == 1);
  REQUIRE(table.find("alice@localhost", "phone"));
  CHECK(table.find("alice@localhost", "phone")->id == 3);

  // The replaced session closing later must not remove its successor.
  table.unbind("alice@localhost", "phone", 1);
  REQUIRE(table.find("alice@localhost", "phone"));
  table.unbind("alice@localhost", "phone", 3);
  CHECK_FALSE(table.find("alice@localhost", "phone"));
  table.unbind("alice@localhost", "laptop", 2);
  CHECK(table.sessions_of("alice@localhost").empty());
  CHECK(table.count_of("alice@localhost") == 0);
  CHECK(table.size() == 0);
}

TEST_CASE("session table: max sessions per user") {
  SessionTable table;
  CHECK(table.bind("bob@localhost", "a", 1, 2).ok);
  CHECK(table.bind("bob@localhost", "b", 2, 2).ok);
  CHECK_FALSE(table.bind("bob@localhost", "c", 3, 2).ok);
  CHECK(table.bind("bob@localhost", "a", 4, 2).ok);  // replacing is not a new session
  CHECK(table.size() == 2);
}

TEST_CASE("session table: presence") {
  SessionTable table;
  table.bind("carol@localhost", "x", 7, 0);
  CHECK_FALSE(table.find("carol@localhost", "x")->available);
  table.set_presence("carol@localhost", 7, true, 5);
  CHECK(table.find("carol@localhost", "x")->available);
  CHECK(table.find("carol@localhost", "x")->priority == 5);
}

TEST_CASE("session table: concurrent binds from several loops") {
  SessionTable table;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&table, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string bare = "user" + std::to_string(i) + "@localhost";
        table.bind(bare, "r" + std::to_string(t), make_session_id(t, i + 1), 0);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(table.size() == 8000);
}

// issue 17: host_sessions (XEP-0133's online users) lists a domain's sessions.
TEST_CASE("session table: every session of a domain") {
  SessionTable table;
  table.bind("alice@localhost", "a", 1, 0);
  table.bind("alice@localhost", "b", 2, 0);
  table.bind("bob@example.org", "x", 3, 0);
  table.bind("carol@localhost.example", "y", 4, 0);  // another domain that starts alike
  table.set_presence("alice@localhost", 2, true, 1);
  std::vector<std::string> seen;
  table.for_each_in_domain("localhost", [&](std::string_view bare, const SessionRef& ref) {
    seen.push_back(std::string(bare) + "/" + ref.resource + (ref.available ? "+" : ""));
  });
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"alice@localhost/a", "alice@localhost/b+"});
}

// A session whose connection was cut stays in the table, marked leaving, until
// its loop has routed again what it held (Session::leave_session_table).
TEST_CASE("session table: leaving marks the session's own entry only") {
  SessionTable table;
  table.bind("bob@localhost", "slow", 1, 0);
  table.bind("bob@localhost", "other", 2, 0);
  table.set_presence("bob@localhost", 1, true, 0);
  table.set_leaving("bob@localhost", "slow", 7);  // not its id: a replacing session's entry is left alone
  CHECK_FALSE(table.find("bob@localhost", "slow")->leaving);
  table.set_leaving("bob@localhost", "slow", 1);
  auto slow = table.find("bob@localhost", "slow");
  REQUIRE(slow);
  CHECK(slow->leaving);
  CHECK(slow->available);  // other loops still route to it
  CHECK_FALSE(table.find("bob@localhost", "other")->leaving);
  table.unbind("bob@localhost", "slow", 1);
  CHECK_FALSE(table.find("bob@localhost", "slow"));
  // A new session binding the resource starts afresh.
  table.bind("bob@localhost", "slow", 3, 0);
  CHECK_FALSE(table.find("bob@localhost", "slow")->leaving);
}

TEST_CASE("session table: targets_of gives what sessions_of gives, without the resources, past the inline 8") {
  SessionTable t;
  SessionTargets out;
  t.targets_of("nobody@example.com", out);
  CHECK(out.all().empty());
  for (size_t n : {size_t{1}, SessionTargets::kInline, SessionTargets::kInline + 3}) {
    const std::string bare = "user" + std::to_string(n) + "@example.com";
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(t.bind(bare, "res" + std::to_string(i), make_session_id(i % 2, 100 + i), 0).ok);
      if (i % 3 == 0) t.set_presence(bare, make_session_id(i % 2, 100 + i), true, static_cast<int>(i));
    }
    t.set_leaving(bare, "res0", make_session_id(0, 100));
    t.targets_of(bare, out);
    const std::vector<SessionRef> refs = t.sessions_of(bare);
    REQUIRE(out.all().size() == refs.size());
    REQUIRE(refs.size() == n);
    for (size_t i = 0; i < refs.size(); ++i) {
      CHECK(out.all()[i].id == refs[i].id);
      CHECK(out.all()[i].priority == refs[i].priority);
      CHECK(out.all()[i].available == refs[i].available);
      CHECK(out.all()[i].leaving == refs[i].leaving);
    }
  }
  // Reused for a user with one session after one with many: emptied first.
  t.targets_of("user1@example.com", out);
  CHECK(out.all().size() == 1);
}
