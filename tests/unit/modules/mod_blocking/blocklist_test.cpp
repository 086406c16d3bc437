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

TEST_CASE("an empty list is one pointer, before the first item and after the last") {
  // Issue 18 (idle memory): every online user's list is cached, almost always empty.
  static_assert(sizeof(Blocklist) == sizeof(void*));
  Blocklist list;
  CHECK(list.empty());
  CHECK(list.items().empty());
  CHECK(list.remove({"a@x.example"}).empty());
  CHECK_FALSE(blocks(list, "a@x.example"));
  list.assign({});
  CHECK(list.empty());
  list.add({"a@x.example", "b@x.example"});
  CHECK_FALSE(list.empty());
  list.remove({"a@x.example", "b@x.example"});
  CHECK(list.empty());
  CHECK(list.size() == 0);
  CHECK(list.items().empty());
  list.add({"c@x.example"});
  CHECK(list.items() == std::vector<std::string>{"c@x.example"});
  CHECK(blocks(list, "c@x.example/r"));
}
