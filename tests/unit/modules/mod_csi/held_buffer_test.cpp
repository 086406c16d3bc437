// The buffer of one inactive session: order, bounds, latest presence per contact.
#include <doctest/doctest.h>

#include "held_buffer.hpp"

using namespace parley::csi;

namespace {

std::vector<std::string> xmls(std::vector<HeldBuffer::Entry> entries) {
  std::vector<std::string> out;
  for (auto& e : entries) out.push_back(e.xml.str());
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

TEST_CASE("a stamped stanza counts its <delay/> and keeps the stamp for its release and the save") {
  HeldBuffer b(BufferLimits{100, 20});
  CHECK_FALSE(b.push("bob/a", parley::OutBytes("<p/>"), "2026-01-01T00:00:00Z", 10).full);
  CHECK(b.bytes() == 14);
  CHECK(b.push("", parley::OutBytes("<m/>"), "2026-01-01T00:00:01Z", 10).full);  // 14 + 14 > 20
  // A superseding presence gives back what the older one counted, <delay/> included.
  CHECK(b.push("bob/a", parley::OutBytes("<p2/>"), "2026-01-01T00:00:02Z", 10).superseded);
  CHECK(b.bytes() == 15);
  // Saved as the module releases it (here: the stamp appended).
  std::string saved = b.save([](const HeldBuffer::Entry& e) { return e.xml.str() + e.stamp; });
  auto restored = HeldBuffer::restore(saved, BufferLimits{});
  REQUIRE(restored);
  auto entries = restored->take();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].key == "bob/a");
  CHECK(entries[0].xml.str() == "<p2/>2026-01-01T00:00:02Z");
  CHECK(entries[0].stamp.empty());  // restored: the text is final
  auto taken = b.take();
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].stamp == "2026-01-01T00:00:02Z");
  CHECK(taken[0].bytes == 15);
}
