// Serializer: escaping, namespaces, prefixes, and parse(serialize(e)) == e.
#include <doctest/doctest.h>

#include "parser_recorder.hpp"
#include "sample_streams.hpp"
#include "xml/serializer.hpp"

using namespace parley::xml;
using namespace parley::xml::test;

TEST_CASE("escaping") {
  std::string out;
  escape_text_to(out, "a&b<c>d'e\"f\r\n\tg");
  CHECK(out == "a&amp;b&lt;c&gt;d'e\"f&#13;\n\tg");
  out.clear();
  escape_attr_to(out, "a&b<c>d'e\"f\r\n\tg");
  CHECK(out == "a&amp;b&lt;c&gt;d&apos;e&quot;f&#13;&#10;&#9;g");
  out = "keep:";
  escape_text_to(out, "");
  escape_text_to(out, "plain \xE2\x9C\x93");
  CHECK(out == "keep:plain \xE2\x9C\x93");
}

// The escapes scan sixteen bytes at a time where they can: every character that needs
// escaping, at every offset of strings up to three blocks long and beyond, against a
// byte-at-a-time reference.
TEST_CASE("escaping finds every special byte at every offset") {
  auto reference = [](std::string_view s, bool attr) {
    std::string out;
    for (char c : s) {
      if (c == '&') out += "&amp;";
      else if (c == '<') out += "&lt;";
      else if (c == '>') out += "&gt;";
      else if (c == '\r') out += "&#13;";
      else if (attr && c == '\'') out += "&apos;";
      else if (attr && c == '"') out += "&quot;";
      else if (attr && c == '\t') out += "&#9;";
      else if (attr && c == '\n') out += "&#10;";
      else out += c;
    }
    return out;
  };
  const std::string specials = "&<>\r'\"\t\n";
  for (size_t len : {1u, 15u, 16u, 17u, 31u, 32u, 33u, 48u, 50u}) {
    for (size_t at = 0; at < len; ++at) {
      for (char c : specials) {
        std::string s(len, 'x');
        s[at] = c;
        if (at + 3 < len) s[at + 3] = '\xC3';  // bytes above 0x7f are not special
        if (len > 20) s[len - 1 - (at % 5)] = '&';
        std::string text, attr;
        escape_text_to(text, s);
        escape_attr_to(attr, s);
        CHECK(text == reference(s, false));
        CHECK(attr == reference(s, true));
      }
    }
  }
}

TEST_CASE("elements, default namespace and children in other namespaces") {
  Element m("message", "jabber:client");
  m.set_attr("to", "juliet@example.com").set_attr("id", "it's");
  m.add_child("body", "jabber:client").add_text("1 < 2 & 3 > 2");
  m.add_child("active", "http://jabber.org/protocol/chatstates");
  Element& x = m.add_child("x", "jabber:x:data");
  x.add_child("field", "jabber:x:data").set_attr("var", "a");
  CHECK(serialize(m, {"jabber:client"}) ==
        "<message to='juliet@example.com' id='it&apos;s'><body>1 &lt; 2 &amp; 3 &gt; 2</body>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/>"
        "<x xmlns='jabber:x:data'><field var='a'/></x></message>");
  CHECK(serialize(m).rfind("<message xmlns='jabber:client' to=", 0) == 0);
  std::string out = "prefix";
  serialize_to(out, Element("presence", "jabber:client"), {"jabber:client"});
  CHECK(out == "prefix<presence/>");
}

TEST_CASE("the empty namespace under a namespaced parent is undeclared") {
  Element m("message", "jabber:client");
  m.add_child("plain", "");
  CHECK(serialize(m, {"jabber:client"}) == "<message><plain xmlns=''/></message>");
  CHECK(serialize(Element("plain"), {"jabber:client"}) == "<plain xmlns=''/>");
  CHECK(serialize(Element("plain")) == "<plain/>");
}

TEST_CASE("the stream prefix") {
  Element f("features", std::string(kStreamsNs));
  f.add_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls").add_child("required", "urn:ietf:params:xml:ns:xmpp-tls");
  f.add_child("bind", "urn:ietf:params:xml:ns:xmpp-bind");
  CHECK(serialize(f, {"jabber:client"}) ==
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
  Element err("error", std::string(kStreamsNs));
  err.add_child("conflict", "urn:ietf:params:xml:ns:xmpp-streams");
  CHECK(serialize(err, {"jabber:client"}) ==
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
  CHECK(serialize(err, {"jabber:client", false}) ==
        "<error xmlns='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>");
  // A stream element's children see the default namespace of the stream, not the stream namespace.
  Element g("features", std::string(kStreamsNs));
  g.add_child("x", "jabber:client");
  CHECK(serialize(g, {"jabber:client"}) == "<stream:features><x/></stream:features>");
}

TEST_CASE("namespaced attributes get generated prefixes; xml:lang is written as is") {
  Element m("message", "jabber:client");
  m.set_attr("xml:lang", "en");
  m.set_attr("{urn:a}x", "1");
  m.set_attr("{urn:b}y", "2");
  m.set_attr("{urn:a}z", "3");
  m.set_attr("{http://www.w3.org/XML/1998/namespace}space", "preserve");
  m.set_attr("{}plain", "4");
  m.set_attr("xmlns", "dropped");
  m.set_attr("xmlns:foo", "dropped");
  CHECK(serialize(m, {"jabber:client"}) ==
        "<message xml:lang='en' xmlns:ns0='urn:a' ns0:x='1' xmlns:ns1='urn:b' ns1:y='2' ns0:z='3' xml:space='preserve' "
        "plain='4'/>");
}

TEST_CASE("round trip: built trees") {
  std::vector<Element> trees;
  {
    Element m("message", "jabber:client");
    m.set_attr("to", "a@b/c").set_attr("xml:lang", "de").set_attr("id", "<&'\">\t\n\r ");
    m.add_child("body", "jabber:client").add_text("line1\r\nline2\rline3 <&> ]]> \xF0\x9F\x98\x80");
    m.add_text("  ");
    Element& x = m.add_child("x", "urn:x");
    x.set_attr("{urn:attr}a", "1").set_attr("{urn:x}b", "2");
    x.add_child("y", "").add_child("z", "urn:z").add_text("deep");
    x.add_child("s", std::string(kStreamsNs)).add_child("t", "urn:x");
    m.add_child("empty", "jabber:client");
    trees.push_back(m);
  }
  {
    Element iq("iq", "jabber:client");
    iq.set_attr("type", "result");
    Element& q = iq.add_child("query", "jabber:iq:roster");
    for (int i = 0; i < 5; ++i) {
      Element& item = q.add_child("item", "jabber:iq:roster");
      item.set_attr("jid", "user" + std::to_string(i) + "@example.com").set_attr("name", "N'a\"me & co");
      item.add_child("group", "jabber:iq:roster").add_text("Friends & Family");
    }
    trees.push_back(iq);
  }
  {
    Element odd("a", "urn:with'quote&amp");
    odd.add_child("b", "urn:with'quote&amp").set_attr("{urn:with'quote&amp}c", "d");
    trees.push_back(odd);
  }
  for (const Element& e : trees) {
    for (std::string_view ns : {"jabber:client", "jabber:server", ""}) {
      const std::string xml = serialize(e, {ns});
      CAPTURE(xml);
      CHECK(reparse(xml, ns) == e);
    }
  }
}

TEST_CASE("round trip: every stanza of the sample streams") {
  for (const std::string& s : realistic_streams()) {
    Recorder r;
    Limits limits;
    StreamParser p(r, limits);
    p.feed(s);
    REQUIRE(!r.headers.empty());
    const std::string ns = r.headers[0].default_xmlns;
    for (const Element& e : r.stanzas) {
      const std::string xml = serialize(e, {ns});
      CAPTURE(xml);
      CHECK(reparse(xml, ns) == e);
    }
  }
}
