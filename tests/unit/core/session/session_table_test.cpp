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
  CHECK(table.bind("alice@localhost", "laptop", 2, 10).ok);
  CHECK(table.sessions_of("alice@localhost").size() == 2);

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
