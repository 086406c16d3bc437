// mod_blocking's Blocklist: insertion order, duplicates, removal, matching.
#include <doctest/doctest.h>

#include "blocklist.hpp"

using mod_blocking::Blocklist;

namespace {

bool blocks(const Blocklist& list, const char* address) {
  return list.blocks(parley::Jid::prepared(address));
}

}  // namespace

TEST_CASE("items keep the order they were blocked in, once each") {
  Blocklist list;
  CHECK(list.add({"romeo@montague.net", "iago@shakespeare.lit"}) ==
        std::vector<std::string>{"romeo@montague.net", "iago@shakespeare.lit"});
  CHECK(list.add({"iago@shakespeare.lit", "tybalt@capulet.com", "tybalt@capulet.com"}) ==
        std::vector<std::string>{"tybalt@capulet.com"});
  CHECK(list.items() == std::vector<std::string>{"romeo@montague.net", "iago@shakespeare.lit", "tybalt@capulet.com"});
  CHECK(list.size() == 3);
  CHECK(list.contains("iago@shakespeare.lit"));
}

TEST_CASE("remove takes out what is there and says what it took") {
  Blocklist list;
  list.assign({"a@x.example", "b@x.example", "c@x.example"});
  CHECK(list.remove({"b@x.example", "zz@x.example"}) == std::vector<std::string>{"b@x.example"});
  CHECK(list.items() == std::vector<std::string>{"a@x.example", "c@x.example"});
  CHECK_FALSE(list.contains("b@x.example"));
  list.clear();
  CHECK(list.size() == 0);
  CHECK_FALSE(blocks(list, "a@x.example"));
}

TEST_CASE("blocks applies the XEP-0191 matching over every item") {
  Blocklist list;
  list.assign({"romeo@montague.net", "capulet.com", "verona.lit/square", "nurse@capulet.org/kitchen"});
  CHECK(blocks(list, "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks(list, "benvolio@montague.net"));
  CHECK(blocks(list, "tybalt@capulet.com/sword"));
  CHECK(blocks(list, "ball.capulet.com"));
  CHECK(blocks(list, "prince@verona.lit/square"));
  CHECK_FALSE(blocks(list, "prince@verona.lit/palace"));
  CHECK(blocks(list, "nurse@capulet.org/kitchen"));
  CHECK_FALSE(blocks(list, "nurse@capulet.org/garden"));
  CHECK_FALSE(blocks(list, "nurse@capulet.org"));
  list.remove({"capulet.com"});
  CHECK_FALSE(blocks(list, "tybalt@capulet.com/sword"));
}
