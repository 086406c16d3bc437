// How an offline message is kept in the map store: its value and its key.
#include <set>

#include <doctest/doctest.h>

#include "offline_item.hpp"

using namespace parley::offline;

TEST_CASE("an item's value carries the sender and the stanza") {
  std::string v = encode_item("romeo@montague.net", "<message><body>a\nb</body></message>");
  auto item = decode_item(v);
  REQUIRE(item);
  CHECK(item->sender == "romeo@montague.net");
  CHECK(item->xml == "<message><body>a\nb</body></message>");  // a line feed in the stanza stays
  auto anonymous = decode_item(encode_item("", "<message/>"));
  REQUIRE(anonymous);
  CHECK(anonymous->sender.empty());
}

TEST_CASE("a value that encode_item did not make is refused") {
  CHECK_FALSE(decode_item(""));
  CHECK_FALSE(decode_item("no line feed"));
  CHECK_FALSE(decode_item("sender\n"));
  CHECK_FALSE(decode_item("sender\nnot xml"));
}

TEST_CASE("keys are unique per loop and counter, and fixed-width") {
  std::set<std::string> keys{item_key(1, 0, 0), item_key(1, 1, 0), item_key(1, 0, 1), item_key(2, 0, 0)};
  CHECK(keys.size() == 4);
  CHECK(item_key(0x1234, 3, 7).size() == item_key(UINT64_MAX, 0xffff, UINT32_MAX).size());
  CHECK(moved_key(5) != moved_key(50));
}
