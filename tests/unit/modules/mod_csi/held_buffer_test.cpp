// The buffer of one inactive session: order, bounds, latest presence per contact.
#include <doctest/doctest.h>

#include "held_buffer.hpp"

using namespace parley::csi;

namespace {

std::vector<std::string> xmls(std::vector<HeldBuffer::Entry> entries) {
  std::vector<std::string> out;
  for (auto& e : entries) out.push_back(e.xml);
  return out;
}

}  // namespace

TEST_CASE("held stanzas come out in order, once") {
  HeldBuffer b;
  CHECK(b.empty());
  CHECK_FALSE(b.push("", "m1").full);
  CHECK_FALSE(b.push("bob/a", "p1").full);
  CHECK_FALSE(b.push("", "m2").full);
  CHECK(b.size() == 3);
  CHECK(b.bytes() == 6);
  CHECK(xmls(b.take()) == std::vector<std::string>{"m1", "p1", "m2"});
  CHECK(b.empty());
  CHECK(b.bytes() == 0);
  CHECK(b.take().empty());
}

TEST_CASE("only the latest presence of a contact survives, at the place of the latest") {
  HeldBuffer b;
  b.push("bob/a", "p1");
  b.push("", "m1");
  b.push("carol/b", "q1");
  auto pushed = b.push("bob/a", "p2");
  CHECK(pushed.superseded);
  CHECK_FALSE(pushed.full);
  CHECK_FALSE(b.push("bob/b", "r1").superseded);  // another resource is another contact
  CHECK(b.push("bob/a", "p3").superseded);
  CHECK(xmls(b.take()) == std::vector<std::string>{"m1", "q1", "r1", "p3"});
  // After a flush, nothing is superseded any more.
  CHECK_FALSE(b.push("bob/a", "p4").superseded);
}

TEST_CASE("a full buffer refuses the stanza and keeps what it has") {
  HeldBuffer b(BufferLimits{3, 1000});
  CHECK_FALSE(b.push("", "a").full);
  CHECK_FALSE(b.push("", "b").full);
  CHECK_FALSE(b.push("", "c").full);
  auto pushed = b.push("", "d");
  CHECK(pushed.full);
  CHECK(xmls(b.take()) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("a superseding presence does not need room; a full one still removes the old one") {
  HeldBuffer b(BufferLimits{2, 1000});
  b.push("bob/a", "p1");
  b.push("", "m1");
  auto replaced = b.push("bob/a", "p2");
  CHECK(replaced.superseded);
  CHECK_FALSE(replaced.full);
  CHECK(b.size() == 2);
  auto over = b.push("carol/a", "q1");
  CHECK(over.full);
  CHECK_FALSE(over.superseded);
  // Bytes: a larger presence that does not fit removes the superseded one.
  HeldBuffer c(BufferLimits{10, 10});
  c.push("bob/a", "12345");
  c.push("", "123");
  auto big = c.push("bob/a", "12345678");
  CHECK(big.superseded);
  CHECK(big.full);
  CHECK(xmls(c.take()) == std::vector<std::string>{"123"});
}

TEST_CASE("the byte limit counts the serialized stanzas") {
  HeldBuffer b(BufferLimits{100, 10});
  CHECK_FALSE(b.push("", "12345").full);
  CHECK_FALSE(b.push("", "12345").full);
  CHECK(b.push("", "1").full);
  CHECK(b.bytes() == 10);
  // A stanza larger than the limit never fits, even alone.
  HeldBuffer e(BufferLimits{100, 4});
  CHECK(e.push("", "12345").full);
  CHECK(e.empty());
}

TEST_CASE("save and restore keep the entries, their order and their keys") {
  CHECK(HeldBuffer().save().empty());
  HeldBuffer c;
  c.push("bob@x/a", "<presence from='bob@x/a'/>");
  c.push("", "<message>1:2</message>");
  auto restored = HeldBuffer::restore(c.save(), BufferLimits{});
  REQUIRE(restored);
  CHECK(restored->size() == 2);
  CHECK(restored->push("bob@x/a", "<presence from='bob@x/a' type='unavailable'/>").superseded);
  CHECK(xmls(restored->take()) ==
        std::vector<std::string>{"<message>1:2</message>", "<presence from='bob@x/a' type='unavailable'/>"});
  auto empty = HeldBuffer::restore("", BufferLimits{});
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("a malformed saved buffer is refused") {
  CHECK_FALSE(HeldBuffer::restore("x", BufferLimits{}));
  CHECK_FALSE(HeldBuffer::restore("0:", BufferLimits{}));         // no stanza
  CHECK_FALSE(HeldBuffer::restore("0:0:", BufferLimits{}));       // an empty stanza
  CHECK_FALSE(HeldBuffer::restore("0:9:abc", BufferLimits{}));    // longer than what is there
  CHECK_FALSE(HeldBuffer::restore("0:3:abcjunk", BufferLimits{}));
  CHECK_FALSE(HeldBuffer::restore(":3:abc", BufferLimits{}));
}
