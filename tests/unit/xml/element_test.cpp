// Element: the stanza tree API.
#include <doctest/doctest.h>

#include "xml/element.hpp"

using namespace parley::xml;

TEST_CASE("name, namespace, attributes") {
  Element e("message", "jabber:client");
  CHECK(e.name() == "message");
  CHECK(e.xmlns() == "jabber:client");
  CHECK(e.attr("to").empty());
  CHECK(e.find_attr("to") == nullptr);
  CHECK_FALSE(e.has_attr("to"));
  e.set_attr("to", "a@b").set_attr("type", "chat").set_attr("to", "c@d");
  CHECK(e.attrs().size() == 2);
  CHECK(e.attr("to") == "c@d");
  REQUIRE(e.find_attr("type"));
  CHECK(*e.find_attr("type") == "chat");
  CHECK(e.has_attr("type"));
  e.set_attr("", "empty-name-is-a-name");
  CHECK(e.has_attr(""));
  e.set_attr("id", "");
  CHECK(e.has_attr("id"));
  CHECK(e.attr("id").empty());
  e.remove_attr("to");
  e.remove_attr("absent");
  CHECK_FALSE(e.has_attr("to"));
  CHECK(e.attrs().size() == 3);
  e.set_name("iq");
  e.set_xmlns("jabber:server");
  CHECK(e.name() == "iq");
  CHECK(e.xmlns() == "jabber:server");
  e.set_xmlns("");
  CHECK(e.xmlns().empty());
  Element def;
  CHECK(def.name().empty());
  CHECK(def.xmlns().empty());
}

TEST_CASE("children and text") {
  Element m("message", "jabber:client");
  Element& body = m.add_child("body", "jabber:client");
  body.add_text("hello ").add_text("").add_text("world");
  REQUIRE(body.nodes().size() == 1);
  CHECK(body.text() == "hello world");
  m.add_text("\n");
  Element& x = m.add_child(Element("x", "jabber:x:oob"));
  x.add_child("url", "jabber:x:oob").add_text("https://example.com");
  m.add_text(" ");
  m.add_text("tail");
  CHECK(m.child_count() == 2);
  CHECK(m.nodes().size() == 4);
  CHECK(m.text() == "\n tail");
  CHECK(m.first_child() == &body);
  CHECK(m.find_child("x") == &x);
  CHECK(m.find_child("x", "jabber:x:oob") == &x);
  CHECK(m.find_child("x", "urn:other") == nullptr);
  CHECK(m.find_child("nope") == nullptr);
  CHECK(m.child_text("body") == "hello world");
  CHECK(m.child_text("nope").empty());
  CHECK(x.child_text("url", "jabber:x:oob") == "https://example.com");
  // References to children survive more additions (children live on the heap).
  for (int i = 0; i < 100; ++i) m.add_child("pad", "");
  CHECK(body.text() == "hello world");
  CHECK(m.children().size() == 102);
  const Element& cm = m;
  CHECK(cm.children().front() == &body);
  CHECK(cm.find_child("body")->name() == "body");
  m.find_child("body")->set_attr("xml:lang", "en");
  CHECK(body.attr("xml:lang") == "en");
  // A child in the parent's namespace shares the namespace string.
  CHECK(body.xmlns_ref() == m.xmlns_ref());
  // Namespaces are literal: "" is no namespace, not the parent's.
  CHECK(m.add_child("plain", "").xmlns().empty());
  CHECK(m.add_child(Element("plain2")).xmlns().empty());
  CHECK(m.add_child(Element("same", "jabber:client")).xmlns_ref() == m.xmlns_ref());
}

TEST_CASE("remove_children merges the text left adjacent; clear_children removes everything") {
  Element m("message", "jabber:client");
  m.add_text("a");
  m.add_child("x", "urn:x");
  m.add_text("b");
  m.add_child("x", "urn:y");
  m.add_text("c");
  m.add_child("y", "urn:x");
  m.remove_children("x", "urn:x");
  CHECK(m.child_count() == 2);
  REQUIRE(m.nodes().size() == 4);
  CHECK(m.nodes()[0].text == "ab");
  m.remove_children("x");
  CHECK(m.child_count() == 1);
  CHECK(m.nodes().size() == 2);
  CHECK(m.text() == "abc");
  m.clear_children();
  CHECK(m.nodes().empty());
  CHECK(m.first_child() == nullptr);
}

TEST_CASE("copies are deep, moves are cheap, equality is structural") {
  Element m("message", "jabber:client");
  m.set_attr("to", "a@b");
  m.add_child("body", "jabber:client").add_text("hi");
  Element copy = m;
  CHECK(copy == m);
  copy.find_child("body")->add_text("!");
  CHECK(m.child_text("body") == "hi");
  CHECK_FALSE(copy == m);
  Element assigned;
  assigned = m;
  CHECK(assigned == m);
  Element& alias = assigned;
  assigned = alias;  // self-assignment
  CHECK(assigned == m);
  const Element* body = m.first_child();
  Element moved = std::move(m);
  CHECK(moved.first_child() == body);
  Element target;
  target = std::move(moved);
  CHECK(target.first_child() == body);

  // Attribute order does not matter; node order does.
  Element a("x", "urn:x");
  a.set_attr("p", "1").set_attr("q", "2");
  Element b("x", "urn:x");
  b.set_attr("q", "2").set_attr("p", "1");
  CHECK(a == b);
  b.set_attr("q", "3");
  CHECK_FALSE(a == b);
  Element c("x", "urn:y");
  c.set_attr("p", "1").set_attr("q", "2");
  CHECK_FALSE(a == c);
  Element t1("t");
  t1.add_text("a");
  t1.add_child("c", "");
  Element t2("t");
  t2.add_child("c", "");
  t2.add_text("a");
  CHECK_FALSE(t1 == t2);
}

TEST_CASE("a deep tree copies and destroys") {
  Element root("r");
  Element* cur = &root;
  for (int i = 0; i < 1000; ++i) cur = &cur->add_child("d", "urn:d");
  cur->add_text("leaf");
  Element copy = root;
  CHECK(copy == root);
}
