// The element pool (xml/element_pool.hpp): elements built on one thread (loop) and dropped on another,
// moves, copies, big stanzas, fragmented parses, the bound on what a thread keeps.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "parser_recorder.hpp"
#include "xml/element.hpp"
#include "xml/element_pool.hpp"
#include "xml/serializer.hpp"

using namespace parley::xml;

namespace {

const std::string kChat =
    "<message to='romeo@example.net/orchard' type='chat' id='m1' xml:lang='en'>"
    "<body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>";

Element parse_one(std::string_view xml) {
  Element e = test::reparse(xml);
  REQUIRE(e.name() != "reparse-failed");
  return e;
}

Element big_stanza(size_t children, size_t attrs) {
  Element m("message", "jabber:client");
  for (size_t i = 0; i < attrs; ++i) m.set_attr("a" + std::to_string(i), std::string(40, 'v'));
  for (size_t i = 0; i < children; ++i) {
    Element& c = m.add_child("item", "urn:example");
    c.set_attr("n", std::to_string(i));
    c.add_text("text of item " + std::to_string(i));
  }
  return m;
}

}  // namespace

TEST_CASE("pool: an element parsed on one thread is read, changed and dropped on another") {
  // The reading loop parses; the writing loop (another thread) serializes, stamps and drops it.
  std::vector<std::unique_ptr<Element>> built;
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) built.push_back(std::make_unique<Element>(parse_one(kChat)));
  });
  reader.join();
  const std::string expected = serialize(parse_one(kChat), {"jabber:client", true});
  size_t cached_on_writer = 0;
  std::thread writer([&] {
    for (auto& e : built) {
      CHECK(serialize(*e, {"jabber:client", true}) == expected);
      e->set_attr("from", "juliet@example.com/balcony");
      e->add_child("delay", "urn:xmpp:delay").set_attr("stamp", "2026-12-06T21:00:00Z");
      e.reset();
    }
    // What was freed here is this thread's to reuse, up to the bound.
    cached_on_writer = pool::cached_bytes();
    CHECK(cached_on_writer > 0);
    CHECK(cached_on_writer <= kPoolCachedBytes);
    Element again = parse_one(kChat);  // built from the blocks freed above
    CHECK(pool::cached_bytes() < cached_on_writer);
    CHECK(serialize(again, {"jabber:client", true}) == expected);
  });
  writer.join();
}

TEST_CASE("pool: moves and copies keep their own trees, across threads") {
  Element original = parse_one(kChat);
  Element copy = original;
  Element moved;
  std::thread other([&] {
    moved = std::move(copy);            // the lists move by pointer: no block changes hands
    Element second_copy = moved;        // a deep copy from this thread's pool
    second_copy.set_attr("id", "m2");
    second_copy.remove_children("body");
    CHECK(moved.attr("id") == "m1");
    REQUIRE(moved.find_child("body") != nullptr);
  });
  other.join();
  CHECK(copy.nodes().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(copy.attrs().empty());
  CHECK(moved == original);
  original.clear_children();
  CHECK(moved.child_text("body") == "Art thou not Romeo, and a Montague?");
  Element assigned;
  assigned = moved;
  moved = Element("iq");
  CHECK(assigned.child_count() == 3);
  CHECK(assigned.attr("xml:lang") == "en");
}

TEST_CASE("pool: a big stanza (lists past the pooled sizes) and the bound on what a thread keeps") {
  std::thread t([] {
    {
      Element big = big_stanza(2000, 60);  // 2000 children, 60 attributes: the lists come from the heap
      Element copy = big;
      CHECK(copy == big);
      CHECK(copy.child_count() == 2000);
      const std::string text = serialize(copy);
      CHECK(parse_one(text) == copy);
    }
    // 4,000 elements (and more of their lists) dropped: the thread keeps at most the bound, the rest
    // went back to the heap.
    CHECK(pool::cached_bytes() <= kPoolCachedBytes);
    CHECK(pool::cached_bytes() > 0);
  });
  t.join();
}

TEST_CASE("pool: a stanza parsed byte by byte equals one parsed whole, and is dropped elsewhere") {
  const std::string doc = std::string(test::kClientHeader) + kChat + kChat;
  test::Recorder whole;
  test::Recorder pieces;
  Limits limits;
  {
    StreamParser p(whole, limits);
    p.feed(doc);
  }
  {
    StreamParser p(pieces, limits);
    for (char c : doc) p.feed(std::string_view(&c, 1));
  }
  REQUIRE(whole.stanzas.size() == 2);
  REQUIRE(pieces.stanzas.size() == 2);
  CHECK(whole.stanzas[0] == pieces.stanzas[1]);
  CHECK(whole.events == pieces.events);
  std::thread other([&] { pieces.stanzas.clear(); });
  other.join();
  CHECK(whole.stanzas[1].attr("to") == "romeo@example.net/orchard");
}

TEST_CASE("pool: blocks of a class are reused, larger ones are not kept") {
  std::thread t([] {
    void* a = pool::allocate(40);
    pool::deallocate(a, 40);
    const size_t cached = pool::cached_bytes();
    CHECK(cached >= 48);
    void* b = pool::allocate(33);  // the same 48-byte class
    CHECK(b == a);
    CHECK(pool::cached_bytes() == cached - 48);
    pool::deallocate(b, 33);
    void* big = pool::allocate(kPoolMaxBlock + 1);
    pool::deallocate(big, kPoolMaxBlock + 1);
    CHECK(pool::cached_bytes() == cached);
  });
  t.join();
}

namespace {
// Built before the thread's pool is first used, so destroyed after it: its element is freed to the heap.
struct LateHolder {
  std::unique_ptr<Element> element;
};
}  // namespace

TEST_CASE("pool: an element freed after its thread's pool is gone goes to the heap") {
  std::thread t([] {
    thread_local LateHolder holder;  // registered for destruction before the pool's cache
    holder.element = std::make_unique<Element>(parse_one(kChat));
  });
  t.join();  // LeakSanitizer (the ASan build) would report a block lost here
}
