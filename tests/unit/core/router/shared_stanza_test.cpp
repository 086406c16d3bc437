// A broadcast serialized once (core/router/router_fanout.cpp): the splice of
// each recipient's 'to' into the shared bytes, and the element a recipient's
// delivery makes or borrows. The routing itself (hooks, loops, stream
// management, CSI) is tested end to end in tests/integration/test_mod_muc_fanout.py.
#include <doctest/doctest.h>

#include "core/router/router.hpp"
#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"

using namespace parley;

namespace {

const std::string kClient(ns::client);

xml::Element groupchat() {
  xml::Element m("message", kClient);
  m.set_attr("from", "room@conference.example.com/nick").set_attr("type", "groupchat").set_attr("id", "m1");
  m.add_child("body", kClient).add_text("hello & <bye>");
  m.add_child("occupant-id", "urn:xmpp:occupant-id:0").set_attr("id", "x1");
  return m;
}

std::string serialized(const xml::Element& e) {
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  return xml::serialize(e, ctx);
}

// What the ordinary path writes for `to`: the stanza with 'to' set, 'to'
// first among the attributes (where the splice puts it).
std::string expected_for(const std::string& to) {
  xml::Element m("message", kClient);
  m.set_attr("to", to);
  const xml::Element original = groupchat();
  for (const auto& a : original.attrs()) m.set_attr(a.name, a.value);
  m.add_child("body", kClient).add_text("hello & <bye>");
  m.add_child("occupant-id", "urn:xmpp:occupant-id:0").set_attr("id", "x1");
  return serialized(m);
}

}  // namespace

TEST_CASE("every recipient's bytes are the shared ones with its own 'to', escaped") {
  xml::Element m = groupchat();
  m.set_attr("to", "someone@else/dropped");  // a 'to' given is replaced
  auto shared = SharedStanza::make(m);
  REQUIRE(shared != nullptr);
  CHECK(shared->head == "<message");
  CHECK_FALSE(shared->stanza.has_attr("to"));
  for (std::string to : {"alice@example.com/phone", "bob@example.com/it's <&> \"here\""}) {
    Delivery d(shared, to);
    std::string scratch;
    std::string_view wire = d.wire(scratch);
    CHECK(wire == expected_for(to));
    CHECK(d.wire_size() == wire.size());
    CHECK(d.bytes.empty());  // nothing kept per recipient
  }
  // The shared serialization is made once and not changed by the recipients.
  CHECK(shared->head + shared->tail == serialized(shared->stanza));
}

TEST_CASE("an empty element and a presence splice too") {
  xml::Element p("presence", kClient);
  auto shared = SharedStanza::make(p);
  REQUIRE(shared != nullptr);
  Delivery d(shared, "a@b/c");
  std::string scratch;
  CHECK(d.wire(scratch) == "<presence to='a@b/c'/>");
}

TEST_CASE("a recipient's element is made only when asked for, or borrowed while lent") {
  xml::Element m = groupchat();
  auto shared = SharedStanza::make(m);
  REQUIRE(shared != nullptr);
  Delivery d(shared, "alice@example.com/phone");
  CHECK_FALSE(d.made);
  CHECK(d.peek().name() == "message");  // no element made for a look at the name
  CHECK_FALSE(d.made);
  xml::Element& own = d.element();
  CHECK(d.made);
  CHECK(own.attr("to") == "alice@example.com/phone");
  xml::Element expected = groupchat();
  expected.set_attr("to", "alice@example.com/phone");
  CHECK(serialized(own) == serialized(expected));
  // Changing the recipient's own element leaves the shared one alone.
  own.set_attr("id", "changed");
  CHECK(shared->stanza.attr("id") == "m1");
  Delivery other(shared, "bob@example.com/home");
  CHECK(other.element().attr("id") == "m1");
}

TEST_CASE("an ordinary delivery is unchanged: its bytes, its element") {
  Delivery d(groupchat());
  std::string scratch;
  CHECK(d.wire(scratch) == d.bytes);
  CHECK(d.wire_size() == d.bytes.size());
  CHECK(&d.element() == &d.stanza);
  CHECK(&d.peek() == &d.stanza);
}
