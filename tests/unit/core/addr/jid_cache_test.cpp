#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "core/addr/jid.hpp"
#include "core/addr/jid_cache.hpp"

using parley::Jid;
namespace jid_cache = parley::jid_cache;

TEST_CASE("jid cache: the same result as Jid::parse, the first time and from the cache") {
  for (const char* text : {"juliet@example.com", "Juliet@Example.COM/Balcony", "example.com", "romeo@example.net/orchard",
                           "x@[::1]/r", "user@localhost/parley-bench-1", "\xc3\x9f@example.com"}) {
    auto direct = Jid::parse(text);
    REQUIRE(direct);
    for (int pass = 0; pass < 2; ++pass) {
      bool canonical = false;
      auto cached = jid_cache::parse(text, &canonical);
      REQUIRE(cached);
      CHECK(*cached == *direct);
      CHECK(canonical == (direct->full() == text));
    }
  }
}

TEST_CASE("jid cache: a malformed address is refused every time, with Jid::parse's error, and not kept") {
  const size_t before = jid_cache::size();
  for (int pass = 0; pass < 2; ++pass) {
    auto cached = jid_cache::parse("@example.com");
    REQUIRE_FALSE(cached);
    CHECK(cached.error() == Jid::parse("@example.com").error());
  }
  CHECK(jid_cache::size() == before);
}

TEST_CASE("jid cache: bounded, and each thread has its own") {
  for (size_t i = 0; i < jid_cache::max_entries() * 2 + 10; ++i) {
    std::string text = "user" + std::to_string(i) + "@example.com";
    auto cached = jid_cache::parse(text);
    REQUIRE(cached);
    CHECK(cached->local() == "user" + std::to_string(i));
    CHECK(jid_cache::size() <= jid_cache::max_entries());
  }
  std::string long_text = std::string(jid_cache::max_text_bytes, 'a') + "@example.com";
  const size_t before = jid_cache::size();
  auto long_jid = jid_cache::parse(long_text);  // past the cache's bound: prepared, not kept
  REQUIRE(long_jid);
  CHECK(*long_jid == *Jid::parse(long_text));
  CHECK(jid_cache::size() == before);
  size_t other = 1;
  std::thread([&] { other = jid_cache::size(); }).join();
  CHECK(other == 0);
}

TEST_CASE("jid cache: the bound is configurable (limits.max_cached_addresses), 0 keeps nothing") {
  // Its own thread: a fresh cache, and the other cases' caches untouched.
  std::thread([] {
    jid_cache::set_max_entries(8);
    for (size_t i = 0; i < 40; ++i) {
      auto cached = jid_cache::parse("small" + std::to_string(i) + "@example.com");
      REQUIRE(cached);
      CHECK(jid_cache::size() <= 8);
    }
    CHECK(jid_cache::size() > 0);
    jid_cache::set_max_entries(0);
    bool canonical = false;
    auto uncached = jid_cache::parse("Romeo@Example.NET/Orchard", &canonical);  // the bound lowered: starts afresh
    REQUIRE(uncached);
    CHECK(*uncached == *Jid::parse("Romeo@Example.NET/Orchard"));
    CHECK_FALSE(canonical);
    CHECK(jid_cache::size() == 0);
    auto again = jid_cache::parse("romeo@example.net/orchard", &canonical);
    REQUIRE(again);
    CHECK(canonical);
    CHECK(jid_cache::size() == 0);
    jid_cache::set_max_entries(jid_cache::default_max_entries);
  }).join();
}
