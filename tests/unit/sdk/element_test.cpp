// parley::Element / ElementRef / ElementView over a fake host: ownership,
// accessors, and the helpers modules build replies with.
#include <doctest/doctest.h>

#include <stdexcept>

#include "fake_host.hpp"
#include "parley/module.hpp"

using parley::Element;
using parley::ElementRef;
using parley::ElementView;

namespace {

Element parse(std::string_view xml) {
  auto e = Element::parse(fake::api(), xml);
  REQUIRE(e.has_value());
  return std::move(*e);
}

}  // namespace

TEST_CASE("an Element frees what it owns, exactly once") {
  long before = fake::live_elements();
  {
    Element e = Element::create(fake::api(), "message", "jabber:client");
    CHECK(fake::live_elements() == before + 1);
    CHECK(e.name() == "message");
    CHECK(e.xmlns() == "jabber:client");
  }
  CHECK(fake::live_elements() == before);
}

TEST_CASE("moving an Element moves ownership") {
  long before = fake::live_elements();
  Element a = Element::create(fake::api(), "a");
  Element b = std::move(a);
  CHECK_FALSE(a);
  CHECK(b);
  CHECK(fake::live_elements() == before + 1);

  Element c = Element::create(fake::api(), "c");
  c = std::move(b);  // frees the old c
  CHECK(fake::live_elements() == before + 1);
  CHECK(c.name() == "a");
  Element& alias = c;
  c = std::move(alias);  // self-move is harmless
  CHECK(c.name() == "a");
  c.reset();
  CHECK(fake::live_elements() == before);
  CHECK_FALSE(c);
}

TEST_CASE("release hands the pointer over; add_child takes ownership of the child") {
  long before = fake::live_elements();
  Element e = Element::create(fake::api(), "x");
  parley_element* raw = e.release();
  CHECK_FALSE(e);
  CHECK(fake::live_elements() == before + 1);
  fake::api()->element_free(raw);
  CHECK(fake::live_elements() == before);

  {
    Element parent = Element::create(fake::api(), "parent", "urn:p");
    Element child = Element::create(fake::api(), "child", "urn:p");
    ElementRef borrowed = parent.add_child(std::move(child));
    CHECK_FALSE(child);
    CHECK(borrowed.name() == "child");
    borrowed.set_attr("k", "v");
    CHECK(parent.child("child")->attr("k") == "v");
    CHECK(fake::live_elements() == before + 2);
  }
  CHECK(fake::live_elements() == before);
}

TEST_CASE("clone is an independent copy") {
  Element a = parse("<a xmlns='urn:a' k='1'><b>text</b></a>");
  Element b = a.clone();
  b.set_attr("k", "2");
  CHECK(a.attr("k") == "1");
  CHECK(b.attr("k") == "2");
  CHECK(b.child_text("b") == "text");
}

TEST_CASE("attributes") {
  Element e = Element::create(fake::api(), "iq", "jabber:client");
  CHECK_FALSE(e.attr("id").has_value());
  CHECK_FALSE(e.has_attr("id"));
  e.set_attr("id", "1").set_attr("type", "get");
  CHECK(e.attr("id") == "1");
  e.set_attr("id", "2");
  CHECK(e.attr("id") == "2");
  e.set_attr("empty", "");
  REQUIRE(e.attr("empty").has_value());
  CHECK(e.attr("empty")->empty());
  e.remove_attr("type");
  CHECK_FALSE(e.has_attr("type"));
}

TEST_CASE("children: lookup by name and namespace, iteration, removal") {
  Element e = parse("<q xmlns='urn:q'><a/><b xmlns='urn:other'/><a n='2'/>hello</q>");
  CHECK(e.child_count() == 3);
  CHECK(e.child("a")->attr("n") == std::nullopt);
  CHECK(e.child("b"));
  CHECK(e.child("b", "urn:other"));
  CHECK_FALSE(e.child("b", "urn:q"));
  CHECK_FALSE(e.child("missing"));
  CHECK(e.first_child()->name() == "a");
  CHECK(e.text() == "hello");

  std::vector<std::string> names;
  for (ElementRef c : e.children()) names.emplace_back(c.name());
  CHECK(names == std::vector<std::string>{"a", "b", "a"});

  e.remove_children("a");
  CHECK(e.child_count() == 1);
  CHECK(e.first_child()->name() == "b");
}

TEST_CASE("a read-only view reaches the same data") {
  Element e = parse("<message xmlns='jabber:client' to='a@b'><body>hi &amp; bye</body></message>");
  const ElementView view = e;
  CHECK(view.name() == "message");
  CHECK(view.attr("to") == "a@b");
  CHECK(view.child_text("body") == "hi & bye");
  CHECK(view.child_text("nothing").empty());
  int n = 0;
  for (ElementView c : view.children()) n += c.name() == "body";
  CHECK(n == 1);
}

TEST_CASE("add_child by name, add_text, serialize") {
  Element iq = Element::create(fake::api(), "iq", "jabber:client");
  iq.set_attr("type", "result");
  iq.add_child("query", "urn:q").add_child("count", "urn:q").add_text("4").add_text("2");
  CHECK(iq.serialize() == "<iq xmlns='jabber:client' type='result'><query xmlns='urn:q'><count>42</count></query></iq>");
}

TEST_CASE("serialize_to replaces the buffer's content and keeps its memory") {
  Element iq = Element::create(fake::api(), "iq", "jabber:client");
  iq.set_attr("type", "result");
  std::string buffer(200, 'x');
  const char* memory = buffer.data();
  iq.serialize_to(buffer);
  CHECK(buffer == iq.serialize());
  CHECK(buffer.data() == memory);  // no allocation: it fitted
  Element small = Element::create(fake::api(), "a", "urn:a");
  small.serialize_to(buffer);
  CHECK(buffer == "<a xmlns='urn:a'/>");
  CHECK(buffer.data() == memory);
}

TEST_CASE("parse refuses what is not one well-formed element") {
  CHECK_FALSE(Element::parse(fake::api(), "<a>").has_value());
  CHECK_FALSE(Element::parse(fake::api(), "<a/><b/>").has_value());
  CHECK_FALSE(Element::parse(fake::api(), "").has_value());
  CHECK(Element::parse(fake::api(), "<a/>").has_value());
}

TEST_CASE("using a null element throws, which the trampolines turn into an error") {
  Element e;
  CHECK_THROWS_AS((void)e.name(), std::logic_error);
  CHECK_THROWS_AS(e.set_attr("a", "b"), std::logic_error);
  ElementRef ref;
  CHECK_THROWS_AS((void)ref.child("x"), std::logic_error);
  Element parent = Element::create(fake::api(), "p");
  CHECK_THROWS_AS(parent.add_child(Element()), std::logic_error);
}

TEST_CASE("make_iq_result: same id, from and to swapped, no payload") {
  Element iq = parse("<iq xmlns='jabber:client' type='get' id='p1' from='alice@example.org/phone' to='example.org'>"
                     "<ping xmlns='urn:xmpp:ping'/></iq>");
  Element r = parley::make_iq_result(iq);
  CHECK(r.name() == "iq");
  CHECK(r.xmlns() == "jabber:client");
  CHECK(r.attr("type") == "result");
  CHECK(r.attr("id") == "p1");
  CHECK(r.attr("from") == "example.org");
  CHECK(r.attr("to") == "alice@example.org/phone");
  CHECK(r.child_count() == 0);

  Element no_to = parse("<iq type='get' id='x' from='a@b/c'/>");
  Element r2 = parley::make_iq_result(no_to);
  CHECK_FALSE(r2.has_attr("from"));
  CHECK(r2.attr("to") == "a@b/c");
}

TEST_CASE("bare_jid") {
  CHECK(parley::bare_jid("alice@example.org/phone") == "alice@example.org");
  CHECK(parley::bare_jid("alice@example.org/a/b") == "alice@example.org");
  CHECK(parley::bare_jid("alice@example.org") == "alice@example.org");
  CHECK(parley::bare_jid("example.org") == "example.org");
  CHECK(parley::bare_jid("") == "");
}
